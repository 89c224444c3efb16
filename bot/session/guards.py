"""Permission rules for the slash commands, over discord.py's permission and role objects.

The functions take small protocols that ``discord.Member`` and ``discord.Role`` satisfy, so the rules are
tested with plain objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import discord

#: The permissions the bot needs in a voice channel, with the names Discord's UI shows.
VOICE_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("view_channel", "View Channel"),
    ("connect", "Connect"),
    ("speak", "Speak"),
)


class RoleLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


class MemberLike(Protocol):
    @property
    def guild_permissions(self) -> discord.Permissions: ...
    @property
    def roles(self) -> Sequence[RoleLike]: ...


def missing_voice_permissions(permissions: discord.Permissions) -> list[str]:
    """The UI names of the voice permissions the bot lacks (empty when it may join and speak)."""
    return [label for attr, label in VOICE_PERMISSIONS if not getattr(permissions, attr)]


def is_manager(member: MemberLike, manager_role: str | None) -> bool:
    """Whether ``member`` may change settings: Manage Server, or the configured manager role (by name or id)."""
    if member.guild_permissions.manage_guild:
        return True
    if not manager_role:
        return False
    wanted = manager_role.strip().lower()
    return any(role.name.lower() == wanted or str(role.id) == wanted for role in member.roles)
