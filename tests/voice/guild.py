"""A guild inside a real discord.py client's connection state (as READY + GUILD_CREATE would build it).

Voice channel 10 ("Lounge") holds members 5 "alice" and 7 "carol"; the bot is user 99.
"""

from __future__ import annotations

from typing import Any

import discord

BOT_ID = 99
GUILD_ID = 1000
LOUNGE_ID = 10


def _member(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    user = {"id": str(user_id), "username": name, "global_name": None, "discriminator": "0", "avatar": None}
    return {"user": {**user, "bot": bot}, "roles": [], "joined_at": None, "deaf": False, "mute": False, "flags": 0}


def _voice_state(user_id: int) -> dict[str, Any]:
    flags = {"deaf": False, "mute": False, "self_deaf": False, "self_mute": False, "suppress": False}
    return {"user_id": str(user_id), "channel_id": str(LOUNGE_ID), "session_id": f"s{user_id}", **flags}


def lounge(client: discord.Client) -> discord.VoiceChannel:
    """Build the guild in ``client`` and return its voice channel."""
    state = client._connection
    state.user = discord.ClientUser(state=state, data=_member(BOT_ID, "voicebot", bot=True)["user"])
    everyone = discord.Permissions(view_channel=True, connect=True, speak=True)
    payload = {
        "id": str(GUILD_ID),
        "name": "Guild",
        "owner_id": "1",
        "roles": [
            {
                "id": str(GUILD_ID),
                "name": "@everyone",
                "permissions": str(everyone.value),
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "channels": [
            {
                "id": str(LOUNGE_ID),
                "type": 2,
                "name": "Lounge",
                "position": 0,
                "permission_overwrites": [],
                "bitrate": 64000,
                "user_limit": 0,
            }
        ],
        "members": [_member(BOT_ID, "voicebot", bot=True), _member(5, "alice"), _member(7, "carol")],
        "voice_states": [_voice_state(5), _voice_state(7)],
        "member_count": 3,
        "emojis": [],
        "stickers": [],
        "features": [],
        "large": False,
    }
    guild = discord.Guild(data=payload, state=state)  # type: ignore[arg-type]
    state._add_guild(guild)
    channel = guild.get_channel(LOUNGE_ID)
    assert isinstance(channel, discord.VoiceChannel)
    return channel
