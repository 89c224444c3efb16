"""The ``/voice-admin`` slash commands, for managers: settings, export and forget.

A group of its own, so Discord hides it from members without **Manage Server** (``default_permissions``) and
server admins can open it to a role on the Integrations page; :func:`~cogs._base.manager_only` still checks each
call (Manage Server or ``MANAGER_ROLE``)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.room.listening import ListeningMode
from bot.store import EAGERNESS_LEVELS, SETTING_NAMES, TURN_DETECTIONS, GuildSettings, StoreError, StoreUnavailable
from cogs._base import BotCog, Confirm, UserFacingError, defer, manager_only, member_of, reply

if TYPE_CHECKING:
    from bot.app import VoiceBot

_log = logging.getLogger(__name__)

VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse")
#: What the bot needs in a transcript channel: to see it, post in it, and show embeds there.
TRANSCRIPT_PERMISSIONS = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
)
_DEFAULTS = GuildSettings()


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class VoiceAdminCog(BotCog, group_name="voice-admin", group_description="Manage the voice bot in this server"):
    """Settings, export and deletion of the server's data."""

    @app_commands.command(name="settings", description="Show or change this server's voice settings")
    @app_commands.describe(
        voice="The voice the bot speaks with",
        interruptions="Whether people can interrupt the bot by speaking",
        vad_threshold="How loud speech must be to count (0.0–1.0, default 0.5)",
        silence_ms="How long a pause ends a turn, in ms (default 500)",
        transcripts="Post a transcript of the conversation in text chat",
        transcript_channel="Where to post transcripts (default: the voice channel's chat)",
        mode="Who the bot answers: everyone, only when called by name, or push-to-talk holders",
        turn_detection="How a turn ends: after a pause (server_vad) or when the words sound finished (semantic_vad)",
        eagerness="With semantic_vad: how soon a turn ends (low waits longest; auto = medium)",
        daily_budget_min="Voice minutes per day for this server (0: no limit, unless the bot's owner set one)",
        reset="Put this setting back to its default",
    )
    @app_commands.choices(
        voice=[app_commands.Choice(name=v, value=v) for v in VOICES],
        mode=[app_commands.Choice(name=m.value, value=m.value) for m in ListeningMode],
        turn_detection=[app_commands.Choice(name=t, value=t) for t in TURN_DETECTIONS],
        eagerness=[app_commands.Choice(name=e, value=e) for e in EAGERNESS_LEVELS],
        reset=[app_commands.Choice(name=n, value=n) for n in sorted(SETTING_NAMES)],
    )
    @app_commands.check(manager_only)
    async def settings(
        self,
        interaction: discord.Interaction[Any],
        voice: str | None = None,
        interruptions: bool | None = None,
        vad_threshold: app_commands.Range[float, 0.0, 1.0] | None = None,
        silence_ms: app_commands.Range[int, 100, 3000] | None = None,
        transcripts: bool | None = None,
        transcript_channel: discord.TextChannel | None = None,
        mode: str | None = None,
        turn_detection: str | None = None,
        eagerness: str | None = None,
        daily_budget_min: app_commands.Range[float, 0.0, 1440.0] | None = None,
        reset: str | None = None,
    ) -> None:
        guild = member_of(interaction).guild
        if transcript_channel is not None:
            permissions = transcript_channel.permissions_for(guild.me)
            missing = [label for attr, label in TRANSCRIPT_PERMISSIONS if not getattr(permissions, attr)]
            if missing:
                raise UserFacingError(texts.transcript_channel_unusable(transcript_channel.mention, missing))
        operator_budget = self.bot.config.daily_budget_min
        if daily_budget_min is not None and operator_budget > 0 and not 0 < daily_budget_min <= operator_budget:
            raise UserFacingError(texts.budget_above_operator(operator_budget))
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("voice", voice),
                ("interruptions", interruptions),
                ("vad_threshold", vad_threshold),
                ("silence_ms", silence_ms),
                ("transcripts", transcripts),
                ("transcript_channel_id", transcript_channel.id if transcript_channel else None),
                ("mode", mode),
                ("turn_detection", turn_detection),
                ("eagerness", eagerness),
                ("daily_budget_min", daily_budget_min),
            )
            if value is not None
        }
        if reset is not None:
            if reset not in SETTING_NAMES:
                raise UserFacingError(texts.invalid_setting(f"unknown setting {reset!r}"))
            changes[reset] = getattr(_DEFAULTS, reset)
        if changes:
            try:
                saved = await self.bot.store.update(guild.id, changes)
            except StoreUnavailable:
                raise
            except StoreError as error:
                raise UserFacingError(texts.invalid_setting(str(error))) from error
            await self.bot.sessions.apply_settings(guild.id, saved)
        header = texts.settings_saved(voice_changed="voice" in changes) if changes else texts.SETTINGS_CURRENT
        if reset is not None:
            header = f"{header} {texts.setting_reset(reset)}"
        await reply(interaction, header, embed=settings_embed(self.bot, await self.bot.store.get(guild.id)))

    @app_commands.command(name="export", description="Download everything the bot stored for this server (JSON)")
    @app_commands.check(manager_only)
    async def export(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        data = json.dumps(await self.bot.store.export_guild(guild.id), indent=2, sort_keys=True).encode("utf-8")
        file = discord.File(io.BytesIO(data), filename=f"voicebot-{guild.id}.json")
        await reply(interaction, texts.EXPORTED, file=file)

    @app_commands.command(name="forget", description="Delete this server's settings and usage (keeps opt-outs)")
    @app_commands.check(manager_only)
    async def forget(self, interaction: discord.Interaction[Any]) -> None:
        member = member_of(interaction)
        guild_id = member.guild.id

        async def confirmed(click: discord.Interaction[Any]) -> None:
            rows = await self.bot.store.delete_guild(guild_id)
            opt_outs = len(await self.bot.store.opted_out(guild_id))
            defaults = await self.bot.store.get(guild_id)
            await self.bot.sessions.apply_settings(guild_id, defaults)  # at once
            session = self.bot.sessions.get(guild_id)
            if session is not None:
                await session.refresh_privacy()
            _log.info("guild %s: stored data deleted by a manager", guild_id)
            await click.response.edit_message(content=texts.forgotten(rows, opt_outs), view=None)

        view = Confirm(member.id, confirmed)
        view.question = interaction
        await reply(interaction, texts.FORGET_CONFIRM, view=view)


def settings_embed(bot: VoiceBot, settings: GuildSettings) -> discord.Embed:
    """The server's settings, with channel mentions and what "default" means."""
    embed = discord.Embed(title=texts.SETTINGS_TITLE)
    operator_budget = bot.config.daily_budget_min
    for name, value in dataclasses.asdict(settings).items():
        if name == "transcript_channel_id":
            shown = f"<#{value}>" if value is not None else "the voice channel's chat"
        elif name == "daily_budget_min":
            if value is None:
                shown = f"{texts.DEFAULT_WORD} ({f'{operator_budget:g} min' if operator_budget else texts.NO_BUDGET})"
            else:
                shown = f"{value:g} min" if value else texts.NO_BUDGET
        elif name == "mode":
            shown = texts.mode_description(str(value))
        elif value is None:
            shown = texts.DEFAULT_WORD
        elif isinstance(value, bool):
            shown = "on" if value else "off"
        else:
            shown = str(value)
        embed.add_field(name=name, value=shown)
    return embed


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(VoiceAdminCog(bot))  # type: ignore[arg-type]
