"""The ``/voice`` slash commands: join, leave, reset, say, status, settings, push-to-talk, privacy, usage, export
and forget. The logic they call lives in :mod:`bot.session`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.persona import PersonaError
from bot.room.listening import ListeningMode
from bot.session.guards import missing_voice_permissions
from bot.session.registry import JoinError
from bot.store import EAGERNESS_LEVELS, TURN_DETECTIONS, StoreError
from cogs._base import BotCog, UserFacingError, manager_only, member_of, reply

if TYPE_CHECKING:
    from bot.app import VoiceBot

_log = logging.getLogger(__name__)

VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse")


class VoiceCog(BotCog, group_name="voice", group_description="Talk with the bot in a voice channel"):
    """Join, leave, reset, status, say, settings and data deletion."""

    @app_commands.command(name="join", description="Bring the bot into your voice channel (or the one you name)")
    @app_commands.describe(channel="The voice channel to join (default: the one you are in)")
    @app_commands.guild_only()
    async def join(self, interaction: discord.Interaction[Any], channel: discord.VoiceChannel | None = None) -> None:
        member = member_of(interaction)
        target = channel
        if target is None:
            if member.voice is None or member.voice.channel is None:
                raise UserFacingError(texts.CALLER_NOT_IN_VOICE)
            target = member.voice.channel  # type: ignore[assignment]
        assert target is not None and interaction.guild is not None
        if member.voice is None or member.voice.channel != target:
            raise UserFacingError(texts.CALLER_NOT_WITH_BOT if channel is not None else texts.CALLER_NOT_IN_VOICE)
        missing = missing_voice_permissions(target.permissions_for(interaction.guild.me))
        if missing:
            raise UserFacingError(texts.missing_permissions(target.mention, missing))
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            chat = interaction.channel if isinstance(interaction.channel, discord.abc.Messageable) else None
            session, moved = await self.bot.sessions.join(target, text_channel=chat)
        except JoinError as error:
            raise UserFacingError(str(error)) from error
        message = texts.moved(target.mention) if moved else texts.joined(target.mention, session.persona.name)
        await reply(interaction, message)

    @app_commands.command(name="leave", description="Make the bot leave the voice channel")
    @app_commands.guild_only()
    async def leave(self, interaction: discord.Interaction[Any]) -> None:
        session = self._session_with_caller(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.sessions.leave(session.guild_id, reason="left by command")
        await reply(interaction, texts.LEFT)

    @app_commands.command(name="reset", description="Start a fresh conversation in the same channel")
    @app_commands.guild_only()
    async def reset(self, interaction: discord.Interaction[Any]) -> None:
        session = self._session_with_caller(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        name = self.bot.store.get(session.guild_id).persona
        try:
            persona = self.bot.personas.load(name)
        except PersonaError as error:  # the file broke since it was chosen: keep talking as before
            _log.warning("guild %s: persona %r not reloaded: %s", session.guild_id, name, error.reason)
            persona = None
        await session.reset(persona)
        await reply(interaction, texts.RESET)

    @app_commands.command(name="say", description="The bot answers this text out loud in the voice channel")
    @app_commands.describe(text="What to say to the bot")
    @app_commands.guild_only()
    async def say(self, interaction: discord.Interaction[Any], text: app_commands.Range[str, 1, 1000]) -> None:
        session = self._session_with_caller(interaction)
        await session.say(text)
        await reply(interaction, f"🗣️ {text}")

    @app_commands.command(name="status", description="Who is talking, latency, and what this session costs")
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        session = self.bot.sessions.get(guild.id)
        if session is None:
            raise UserFacingError(texts.NOT_CONNECTED)
        await reply(interaction, embed=session.status_embed(self.bot.store))

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
    )
    @app_commands.choices(
        voice=[app_commands.Choice(name=v, value=v) for v in VOICES],
        mode=[app_commands.Choice(name=m.value, value=m.value) for m in ListeningMode],
        turn_detection=[app_commands.Choice(name=t, value=t) for t in TURN_DETECTIONS],
        eagerness=[app_commands.Choice(name=e, value=e) for e in EAGERNESS_LEVELS],
    )
    @app_commands.check(manager_only)
    @app_commands.guild_only()
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
    ) -> None:
        guild = member_of(interaction).guild
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
            )
            if value is not None
        }
        if changes:
            try:
                saved = self.bot.store.update(guild.id, changes)
            except StoreError as error:
                raise UserFacingError(texts.invalid_setting(str(error))) from error
            await self.bot.sessions.apply_settings(guild.id, saved)
        current = self.bot.store.get(guild.id)
        lines = [
            f"`{name}`: {value if value is not None else 'default'}"
            for name, value in dataclasses.asdict(current).items()
        ]
        header = texts.settings_saved(voice_changed="voice" in changes) if changes else "Current settings:"
        await reply(interaction, "\n".join([header, *lines]))

    @app_commands.command(name="talk", description="Push-to-talk: start or stop being heard by the bot")
    @app_commands.guild_only()
    async def talk(self, interaction: discord.Interaction[Any]) -> None:
        session = self._session_with_caller(interaction)
        if session.mode is not ListeningMode.PUSH_TO_TALK:
            raise UserFacingError(texts.NOT_PUSH_TO_TALK)
        on = session.toggle_push_to_talk(interaction.user.id)
        await reply(interaction, texts.PUSH_TO_TALK_ON if on else texts.PUSH_TO_TALK_OFF)

    @app_commands.command(name="privacy", description="Keep your words out of transcripts, or your voice from the bot")
    @app_commands.describe(
        transcripts="Show what you say in transcripts (off: you appear as '(someone)', without your words)",
        listening="Let the bot hear you in name and push-to-talk modes",
    )
    @app_commands.guild_only()
    async def privacy(
        self, interaction: discord.Interaction[Any], transcripts: bool | None = None, listening: bool | None = None
    ) -> None:
        member = member_of(interaction)
        guild_id = member.guild.id
        if transcripts is not None or listening is not None:
            self.bot.store.set_privacy(
                guild_id,
                member.id,
                no_transcript=None if transcripts is None else not transcripts,
                no_listen=None if listening is None else not listening,
            )
            session = self.bot.sessions.get(guild_id)
            if session is not None:
                session.refresh_privacy()
        choice = self.bot.store.privacy(guild_id, member.id)
        await reply(
            interaction,
            texts.PRIVACY_SAVED.format(
                transcripts="hidden" if choice.no_transcript else "shown",
                listening="off" if choice.no_listen else "on",
            ),
        )

    @app_commands.command(name="usage", description="Voice minutes and estimated cost today and this month")
    @app_commands.guild_only()
    async def usage(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        await reply(interaction, embed=usage_embed(self.bot, guild.id, dt.datetime.now(dt.UTC).date()))

    @app_commands.command(name="export", description="Download everything the bot stored for this server (JSON)")
    @app_commands.check(manager_only)
    @app_commands.guild_only()
    async def export(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        data = json.dumps(self.bot.store.export_guild(guild.id), indent=2, sort_keys=True).encode("utf-8")
        file = discord.File(io.BytesIO(data), filename=f"voicebot-{guild.id}.json")
        await reply(interaction, texts.EXPORTED, file=file)

    @app_commands.command(name="forget", description="Delete everything the bot stored for this server")
    @app_commands.check(manager_only)
    @app_commands.guild_only()
    async def forget(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        rows = self.bot.store.delete_guild(guild.id)
        await reply(interaction, texts.DATA_DELETED.format(rows=rows))

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Follow the bot when a moderator moves or disconnects it, and keep the alone timer current."""
        session = self.bot.sessions.get(member.guild.id)
        if session is None:
            return
        if self.bot.user is not None and member.id == self.bot.user.id:
            if after.channel is None:
                await self.bot.sessions.leave(member.guild.id, reason="disconnected from voice")
                return
            if before.channel != after.channel:
                _log.info("guild %s: moved to channel %s", member.guild.id, after.channel.id)
            session.on_presence_changed()
            return
        channels = {c.id for c in (before.channel, after.channel) if c is not None}
        if session.channel_id in channels and before.channel != after.channel:
            session.on_presence_changed()

    def _session_with_caller(self, interaction: discord.Interaction[Any]) -> Any:
        member = member_of(interaction)
        session = self.bot.sessions.get(member.guild.id)
        if session is None:
            raise UserFacingError(texts.NOT_CONNECTED)
        if member.voice is None or member.voice.channel is None or member.voice.channel.id != session.channel_id:
            raise UserFacingError(texts.CALLER_NOT_WITH_BOT)
        return session


def usage_embed(bot: VoiceBot, guild_id: int, today: dt.date) -> discord.Embed:
    """Minutes and cost today and this month against the daily budget, and the month's top talkers."""
    store = bot.store
    day = today.isoformat()
    month_start = today.replace(day=1).isoformat()
    used_today = store.usage(guild_id, day)
    month = store.usage_since(guild_id, month_start)
    budget = store.get(guild_id).daily_budget_min
    budget_min = budget if budget is not None else bot.config.daily_budget_min
    embed = discord.Embed(title="Voice usage")
    limit = f" of {budget_min:.0f} min" if budget_min else " (no daily budget)"
    embed.add_field(name="Today", value=f"{used_today.minutes:.1f} min{limit} · ${used_today.cost_usd:.3f}")
    embed.add_field(name="This month", value=f"{month.minutes:.1f} min · ${month.cost_usd:.3f}")
    talkers = store.top_talkers(guild_id, month_start, 5)
    lines = [f"<@{user_id}>: {seconds / 60:.1f} min" for user_id, seconds in talkers]
    embed.add_field(name="Top talkers this month", value="\n".join(lines) or "nobody yet", inline=False)
    return embed


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(VoiceCog(bot))  # type: ignore[arg-type]
