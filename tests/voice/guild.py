"""A guild inside a real discord.py client's connection state (as READY + GUILD_CREATE would build it).

Voice channel 10 ("Lounge") holds members 5 "alice" and 7 "carol"; the bot is user 99. A smaller guild than
:func:`tests.discord_world.make_world` (no roles beyond @everyone, no locked or text channel), built from its payloads.
"""

from __future__ import annotations

import discord

from tests.discord_world import (
    BOT_ID,
    add_guild,
    member_payload,
    role_payload,
    voice_channel_payload,
    voice_state_payload,
)

GUILD_ID = 1000
LOUNGE_ID = 10


def lounge(client: discord.Client) -> discord.VoiceChannel:
    """Build the guild in ``client`` and return its voice channel."""
    everyone = discord.Permissions(view_channel=True, connect=True, speak=True)
    guild = add_guild(
        client,
        GUILD_ID,
        "Guild",
        roles=[role_payload(GUILD_ID, "@everyone", everyone, position=0)],
        channels=[voice_channel_payload(LOUNGE_ID, "Lounge")],
        members=[member_payload(BOT_ID, "voicebot", bot=True), member_payload(5, "alice"), member_payload(7, "carol")],
        voice_states=[voice_state_payload(5, LOUNGE_ID), voice_state_payload(7, LOUNGE_ID)],
    )
    channel = guild.get_channel(LOUNGE_ID)
    assert isinstance(channel, discord.VoiceChannel)
    return channel
