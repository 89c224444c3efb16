from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import discord

from bot.app import REQUIRED_PERMISSIONS, bot_intents, extension_names, invite_url


def test_intents_are_minimal() -> None:
    intents = bot_intents()
    enabled = {name for name, value in intents if value}
    assert enabled == {"guilds", "voice_states"}
    assert not intents.message_content


def test_invite_url_asks_exactly_for_the_needed_permissions() -> None:
    query = parse_qs(urlparse(invite_url(1234)).query)
    assert query["client_id"] == ["1234"]
    assert set(query["scope"][0].split()) == {"bot", "applications.commands"}
    granted = discord.Permissions(int(query["permissions"][0]))
    assert granted == REQUIRED_PERMISSIONS
    # View Channel, Send Messages, Embed Links, Connect, Speak, Use Application Commands: Discord's bit numbers.
    assert granted.value == (1 << 10) | (1 << 11) | (1 << 14) | (1 << 20) | (1 << 21) | (1 << 31)


def test_extension_names_are_cog_modules() -> None:
    assert all(name.startswith("cogs.") and not name.startswith("cogs._") for name in extension_names())
