from __future__ import annotations

from dataclasses import dataclass, field

import discord

from bot.session.guards import is_manager, missing_voice_permissions


@dataclass
class Role:
    id: int
    name: str


@dataclass
class Member:
    guild_permissions: discord.Permissions
    roles: list[Role] = field(default_factory=list)


def test_missing_voice_permissions_names_each_one() -> None:
    assert missing_voice_permissions(discord.Permissions(view_channel=True, connect=True, speak=True)) == []
    assert missing_voice_permissions(discord.Permissions(view_channel=True)) == ["Connect", "Speak"]
    assert missing_voice_permissions(discord.Permissions.none()) == ["View Channel", "Connect", "Speak"]


def test_manage_server_or_the_manager_role_may_change_settings() -> None:
    plain = Member(discord.Permissions(send_messages=True), [Role(11, "Members")])
    assert not is_manager(plain, None)
    assert not is_manager(plain, "DJ")
    assert is_manager(Member(discord.Permissions(manage_guild=True)), None)
    assert is_manager(Member(discord.Permissions.none(), [Role(11, "dj")]), "DJ")
    assert is_manager(Member(discord.Permissions.none(), [Role(77, "x")]), "77")
