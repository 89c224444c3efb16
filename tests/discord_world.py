"""Real discord.py model objects (guilds, members, channels) built from gateway payloads, for command tests.

Discord's gateway cannot run here, so the payloads it would send are written out; everything computed from them
(permissions with role and channel overwrites, voice states, mentions) is discord.py's own code. Interactions are
the one minimal fake: they record the replies instead of sending HTTP requests.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any, cast

import discord
from discord.state import ConnectionState

BOT_ID = 99
BOT_ROLE_ID = 4000
EVERYONE_PERMISSIONS = discord.Permissions(view_channel=True, connect=True, speak=True, send_messages=True)
#: What the invite grants the bot (its managed role): ``bot.app.REQUIRED_PERMISSIONS``.
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True, connect=True, speak=True, send_messages=True, embed_links=True, use_application_commands=True
)
LOUNGE, LOCKED, GENERAL, ANNOUNCEMENTS, STAGE, BOOTH, TOWN_HALL, STUDIO, PODIUM = 10, 11, 12, 13, 14, 15, 16, 17, 18


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


def voice_channel_payload(
    channel_id: int,
    name: str,
    deny: discord.Permissions | None = None,
    guild_id: int = 0,
    *,
    stage: bool = False,
    user_limit: int = 0,
    bot_allow: discord.Permissions | None = None,
) -> dict[str, Any]:
    """A voice channel (or a stage), optionally denying @everyone ``deny`` and allowing the bot's role more."""
    overwrites = []
    if deny is not None:
        overwrites.append({"id": str(guild_id), "type": 0, "allow": "0", "deny": str(deny.value)})
    if bot_allow is not None:
        overwrites.append({"id": str(BOT_ROLE_ID), "type": 0, "allow": str(bot_allow.value), "deny": "0"})
    return {
        "id": str(channel_id),
        "type": 13 if stage else 2,
        "name": name,
        "position": 0,
        "permission_overwrites": overwrites,
        "bitrate": 64000,
        "user_limit": user_limit,
    }


def voice_state_payload(user_id: int, channel_id: int) -> dict[str, Any]:
    """A member sitting (unmuted, undeafened) in a voice channel, as GUILD_CREATE lists it."""
    flags = {"deaf": False, "mute": False, "self_deaf": False, "self_mute": False, "suppress": False}
    return {"user_id": str(user_id), "channel_id": str(channel_id), "session_id": f"s{user_id}", **flags}


#: Each world lives on a day of its own: discord.py keeps app-command cooldowns per process, keyed on the time an
#: interaction was created, so a test's commands never meet another test's cooldowns.
_WORLD_DAYS = itertools.count(1)
_world_day = 0


def interaction_time() -> dt.datetime:
    """When an interaction is created: now, shifted to the current world's own day."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=_world_day)


@dataclass
class World:
    """One guild as the bot sees it: text channels 12 ("general") and 13 ("announcements", where @everyone may not
    post); voice channels 10 ("Lounge"), 11 ("Locked", where @everyone may not Connect), 15 ("Booth", room for
    one) and 17 ("Studio"); stages 14 ("Stage", where the bot may request to speak), 16 ("Town hall", where it
    may not) and 18 ("Podium", where it is a stage moderator: Mute Members); member 5 "alice" (in Lounge), 6 "bob"
    (Manage Server, in no channel), 7 "carol" (role "DJ", in Lounge), 8 "dave" (in Booth) and the bot (99, with the
    invite's permissions)."""

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

    def stage_channel(self, channel_id: int) -> discord.StageChannel:
        channel = self.guild.get_channel(channel_id)
        assert isinstance(channel, discord.StageChannel)
        return channel

    def move(self, user_id: int, channel_id: int | None) -> None:
        """``user_id`` moves to ``channel_id`` (``None``: leaves voice): a VOICE_STATE_UPDATE from the main gateway,
        through discord.py's own parser (listeners see it, as on Discord)."""
        data: Any = {
            **voice_state_payload(user_id, channel_id or 0),
            "guild_id": str(self.guild.id),
            "channel_id": None if channel_id is None else str(channel_id),
            "member": self.members[user_id],  # Discord sends the member with guild voice states
        }
        self.state.parse_voice_state_update(data)


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
    global _world_day
    _world_day = next(_WORLD_DAYS)
    members = {
        BOT_ID: member_payload(BOT_ID, "voicebot", bot=True, roles=(BOT_ROLE_ID,)),
        5: member_payload(5, "alice"),
        6: member_payload(6, "bob", roles=(2000,)),
        7: member_payload(7, "carol", roles=(3000,)),
        8: member_payload(8, "dave"),
    }
    locked = voice_channel_payload(LOCKED, "Locked", deny=discord.Permissions(connect=True), guild_id=guild_id)
    no_posting = {
        "id": str(guild_id),
        "type": 0,
        "allow": "0",
        "deny": str(discord.Permissions(send_messages=True).value),
    }
    guild = add_guild(
        client,
        guild_id,
        f"Guild {guild_id}",
        roles=[
            role_payload(guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0),
            role_payload(2000, "Admins", discord.Permissions(manage_guild=True)),
            role_payload(3000, "DJ", discord.Permissions.none()),
            role_payload(BOT_ROLE_ID, "voicebot", BOT_PERMISSIONS),
        ],
        channels=[
            voice_channel_payload(LOUNGE, "Lounge"),
            locked,
            {"id": str(GENERAL), "type": 0, "name": "general", "position": 0, "permission_overwrites": []},
            {
                "id": str(ANNOUNCEMENTS),
                "type": 0,
                "name": "announcements",
                "position": 1,
                "permission_overwrites": [no_posting],
            },
            voice_channel_payload(STAGE, "Stage", stage=True, bot_allow=discord.Permissions(request_to_speak=True)),
            voice_channel_payload(BOOTH, "Booth", user_limit=1),
            voice_channel_payload(TOWN_HALL, "Town hall", stage=True),
            voice_channel_payload(STUDIO, "Studio"),
            voice_channel_payload(PODIUM, "Podium", stage=True, bot_allow=discord.Permissions(mute_members=True)),
        ],
        members=list(members.values()),
        voice_states=[voice_state_payload(5, LOUNGE), voice_state_payload(7, LOUNGE), voice_state_payload(8, BOOTH)],
    )
    return World(state=client._connection, guild=guild, members=members)


@dataclass
class Reply:
    content: str | None
    ephemeral: bool
    embed: discord.Embed | None
    file: discord.File | None = None
    view: discord.ui.View | None = None


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
    deferred_ephemeral: bool = False
    #: The form the command opened (``response.send_modal``), if any.
    modal: discord.ui.Modal | None = None
    created_at: dt.datetime = field(default_factory=interaction_time)

    def __post_init__(self) -> None:
        self.response = _Response(self)
        self.followup = _Followup(self)

    @property
    def guild_id(self) -> int | None:
        return self.guild.id if self.guild else None

    async def edit_original_response(self, *, content: str | None = None, **kwargs: Any) -> None:
        """The command's answer edited later (recorded as a reply)."""
        assert self.response.is_done(), "only an answered interaction has a response to edit"
        self.replies.append(Reply(content, self.replies[-1].ephemeral, kwargs.get("embed"), None, kwargs.get("view")))

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
        self._owner.replies.append(
            Reply(content, ephemeral, kwargs.get("embed"), kwargs.get("file"), kwargs.get("view"))
        )

    async def edit_message(self, *, content: str | None = None, **kwargs: Any) -> None:
        """A component's interaction answered by editing the message it is on (recorded as a reply)."""
        assert not self._done, "an interaction can be answered once"
        self._done = True
        self._owner.replies.append(Reply(content, False, kwargs.get("embed"), None, kwargs.get("view")))

    async def send_modal(self, modal: discord.ui.Modal, /) -> None:
        """A form as the command's answer (Discord shows it; the test fills it in and submits it)."""
        assert not self._done, "an interaction can be answered once"
        self._done = True
        self._owner.modal = modal

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        assert not self._done
        self._done = True
        self._owner.deferred = True
        self._owner.deferred_ephemeral = ephemeral


class _Followup:
    def __init__(self, owner: FakeInteraction) -> None:
        self._owner = owner

    async def send(self, content: str | None = None, *, ephemeral: bool = False, **kwargs: Any) -> None:
        assert self._owner.response.is_done(), "a followup needs an answered interaction"
        if self._owner.deferred and not self._owner.replies:  # Discord: the first followup replaces "thinking…",
            ephemeral = self._owner.deferred_ephemeral  # and is as public as the deferral was
        self._owner.replies.append(
            Reply(content, ephemeral, kwargs.get("embed"), kwargs.get("file"), kwargs.get("view"))
        )
