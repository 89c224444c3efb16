"""Real discord.py model objects (guilds, members, channels) built from gateway payloads, for command tests.

Discord's gateway cannot run here, so the payloads it would send are written out; everything computed from them
(permissions with role and channel overwrites, voice states, mentions) is discord.py's own code. Interactions are
the one minimal fake: they record the replies instead of sending HTTP requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import discord
from discord.state import ConnectionState

BOT_ID = 99
EVERYONE_PERMISSIONS = discord.Permissions(view_channel=True, connect=True, speak=True, send_messages=True)


def member_payload(user_id: int, name: str, *, bot: bool = False, roles: tuple[int, ...] = ()) -> dict[str, Any]:
    return {
        "user": {
            "id": str(user_id),
            "username": name,
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        },
        "roles": [str(r) for r in roles],
        "joined_at": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
    }


def role_payload(role_id: int, name: str, permissions: discord.Permissions, position: int = 1) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "permissions": str(permissions.value),
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
    }


def voice_channel_payload(channel_id: int, name: str, deny: discord.Permissions | None = None, guild_id: int = 0):
    overwrites = []
    if deny is not None:
        overwrites.append({"id": str(guild_id), "type": 0, "allow": "0", "deny": str(deny.value)})
    return {
        "id": str(channel_id),
        "type": 2,
        "name": name,
        "position": 0,
        "permission_overwrites": overwrites,
        "bitrate": 64000,
        "user_limit": 0,
    }


def voice_state_payload(user_id: int, channel_id: int) -> dict[str, Any]:
    """A member sitting (unmuted, undeafened) in a voice channel, as GUILD_CREATE lists it."""
    flags = {"deaf": False, "mute": False, "self_deaf": False, "self_mute": False, "suppress": False}
    return {"user_id": str(user_id), "channel_id": str(channel_id), "session_id": f"s{user_id}", **flags}


@dataclass
class World:
    """One guild as the bot sees it: a general text channel (12), voice channels 10 ("Lounge") and 11 ("Locked",
    where @everyone may not Connect), member 5 "alice" (in Lounge), 6 "bob" (Manage Server, in no channel),
    7 "carol" (role "DJ", in Lounge) and the bot (99)."""

    state: ConnectionState
    guild: discord.Guild
    members: dict[int, dict[str, Any]]

    def member(self, user_id: int) -> discord.Member:
        """The member as an interaction payload carries it (the cache holds only members in voice, as with the
        bot's intents)."""
        cached = self.guild.get_member(user_id)
        if cached is not None:
            return cached
        return discord.Member(data=self.members[user_id], guild=self.guild, state=self.state)  # type: ignore[arg-type]

    def voice_channel(self, channel_id: int) -> discord.VoiceChannel:
        channel = self.guild.get_channel(channel_id)
        assert isinstance(channel, discord.VoiceChannel)
        return channel

    def text_channel(self, channel_id: int = 12) -> discord.TextChannel:
        channel = self.guild.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel)
        return channel


def add_guild(
    client: discord.Client,
    guild_id: int,
    name: str,
    *,
    roles: list[dict[str, Any]],
    channels: list[dict[str, Any]],
    members: list[dict[str, Any]],
    voice_states: list[dict[str, Any]],
) -> discord.Guild:
    """Make the bot (user ``BOT_ID``) the client's user and add a guild to its connection state, as READY and
    GUILD_CREATE would."""
    state: ConnectionState = client._connection
    state.user = discord.ClientUser(state=state, data=member_payload(BOT_ID, "voicebot", bot=True)["user"])
    payload = {
        "id": str(guild_id),
        "name": name,
        "owner_id": "1",
        "roles": roles,
        "channels": channels,
        "members": members,
        "voice_states": voice_states,
        "member_count": len(members),
        "emojis": [],
        "stickers": [],
        "features": [],
        "large": False,
    }
    guild = discord.Guild(data=payload, state=state)  # type: ignore[arg-type]
    state._add_guild(guild)
    return guild


def make_world(client: discord.Client, guild_id: int = 1000) -> World:
    """Build the guild inside ``client``'s own connection state (as READY + GUILD_CREATE would)."""
    members = {
        BOT_ID: member_payload(BOT_ID, "voicebot", bot=True),
        5: member_payload(5, "alice"),
        6: member_payload(6, "bob", roles=(2000,)),
        7: member_payload(7, "carol", roles=(3000,)),
    }
    locked = voice_channel_payload(11, "Locked", deny=discord.Permissions(connect=True), guild_id=guild_id)
    guild = add_guild(
        client,
        guild_id,
        f"Guild {guild_id}",
        roles=[
            role_payload(guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0),
            role_payload(2000, "Admins", discord.Permissions(manage_guild=True)),
            role_payload(3000, "DJ", discord.Permissions.none()),
        ],
        channels=[
            voice_channel_payload(10, "Lounge"),
            locked,
            {"id": "12", "type": 0, "name": "general", "position": 0, "permission_overwrites": []},
        ],
        members=list(members.values()),
        voice_states=[voice_state_payload(5, 10), voice_state_payload(7, 10)],
    )
    return World(state=client._connection, guild=guild, members=members)


@dataclass
class Reply:
    content: str | None
    ephemeral: bool
    embed: discord.Embed | None
    file: discord.File | None = None


@dataclass
class FakeInteraction:
    """Stands in for ``discord.Interaction``: same attributes the cog reads, replies recorded in ``replies``."""

    client: discord.Client
    guild: discord.Guild | None
    user: discord.Member | discord.User
    channel: Any = None
    command: Any = None
    replies: list[Reply] = field(default_factory=list)
    deferred: bool = False

    def __post_init__(self) -> None:
        self.response = _Response(self)
        self.followup = _Followup(self)

    @property
    def guild_id(self) -> int | None:
        return self.guild.id if self.guild else None

    def as_interaction(self) -> discord.Interaction[Any]:
        return cast("discord.Interaction[Any]", self)

    @property
    def last(self) -> Reply:
        assert self.replies, "the command sent no reply"
        return self.replies[-1]


class _Response:
    def __init__(self, owner: FakeInteraction) -> None:
        self._owner = owner
        self._done = False

    def is_done(self) -> bool:
        return self._done

    async def send_message(self, content: str | None = None, *, ephemeral: bool = False, **kwargs: Any) -> None:
        assert not self._done, "an interaction can be answered once"
        self._done = True
        self._owner.replies.append(Reply(content, ephemeral, kwargs.get("embed"), kwargs.get("file")))

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        assert not self._done
        self._done = True
        self._owner.deferred = True


class _Followup:
    def __init__(self, owner: FakeInteraction) -> None:
        self._owner = owner

    async def send(self, content: str | None = None, *, ephemeral: bool = False, **kwargs: Any) -> None:
        assert self._owner.response.is_done(), "a followup needs an answered interaction"
        self._owner.replies.append(Reply(content, ephemeral, kwargs.get("embed"), kwargs.get("file")))
