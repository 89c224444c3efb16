"""The ``/voice`` slash commands everyone may use: join, leave, reset, say, status, push-to-talk, privacy,
forget-me, usage and help. Managers' commands are in :mod:`cogs.voice_admin`; the logic they call lives in
:mod:`bot.session`."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.persona import PersonaError
from bot.room.listening import ListeningMode
from bot.session.guards import is_manager, missing_voice_permissions
from bot.session.registry import InUseError, JoinError, JoinOutcome, Session, VoiceTarget
from bot.session.wiring import session_limits
from bot.store import Privacy
from cogs._base import BotCog, UserFacingError, before_answer, defer, member_of, reply

if TYPE_CHECKING:
    from bot.app import VoiceBot

_log = logging.getLogger(__name__)

#: Per-user cooldowns (uses, per seconds): each join, reset and say costs a Realtime session or a model turn.
JOIN_COOLDOWN = (2, 20.0)
RESET_COOLDOWN = (1, 15.0)
SAY_COOLDOWN = (3, 15.0)


def seconds_to_utc_midnight(now: dt.datetime) -> float:
    """Seconds until the daily budget resets (00:00 UTC)."""
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


@app_commands.guild_only()
class VoiceCog(BotCog, group_name="voice", group_description="Talk with the bot in a voice channel"):
    """Join, leave, reset, say, status, push-to-talk, privacy, usage and help."""

    @app_commands.command(name="join", description="Bring the bot into your voice channel (or the one you name)")
    @app_commands.describe(channel="The voice or stage channel to join (default: the one you are in)")
    @app_commands.checks.cooldown(*JOIN_COOLDOWN)
    async def join(
        self,
        interaction: discord.Interaction[Any],
        channel: discord.VoiceChannel | discord.StageChannel | None = None,
    ) -> None:
        member = member_of(interaction)
        guild = member.guild
        here = member.voice.channel if member.voice is not None else None
        target = channel if channel is not None else here
        if target is None or not isinstance(target, VoiceTarget):
            raise UserFacingError(texts.CALLER_NOT_IN_VOICE)
        if here != target:
            raise UserFacingError(texts.CALLER_NOT_WITH_BOT if channel is not None else texts.CALLER_NOT_IN_VOICE)
        session = self.bot.sessions.get(guild.id)
        if session is not None and session.channel_id == target.id:
            await reply(interaction, texts.ALREADY_HERE.format(channel=target.mention))
            return
        manager = is_manager(member, self.bot.config.manager_role)
        if session is not None and not manager and session.humans_present():  # asked again under the lock on join
            raise UserFacingError(str(InUseError(session.channel_id, session.humans_present())))
        await self._check_can_join(guild, target)
        await interaction.response.defer(thinking=True)  # the answer is public: everyone should know
        chat = interaction.channel if isinstance(interaction.channel, discord.abc.Messageable) else None
        try:
            session, outcome = await self.bot.sessions.join(target, text_channel=chat, may_take_over=manager)
        except JoinError as error:
            raise UserFacingError(str(error)) from error
        if outcome is JoinOutcome.ALREADY_HERE:  # someone else brought it here meanwhile
            await reply(interaction, texts.ALREADY_HERE.format(channel=target.mention))
            return
        if outcome is JoinOutcome.MOVED:
            message = texts.moved_fresh(target.mention, session.persona.name)
        else:
            message = texts.joined(target.mention, session.persona.name)
        stage_note = await self._take_the_stage(target)
        await reply(interaction, f"{message}\n{stage_note}" if stage_note else message, ephemeral=False)

    async def _check_can_join(self, guild: discord.Guild, target: VoiceTarget) -> None:
        """Refuse, before anything is opened, a join that could not work: permissions, a stage the bot could not
        speak on, a full channel, a spent daily budget."""
        permissions = target.permissions_for(guild.me)
        missing = missing_voice_permissions(permissions)
        if missing:
            raise UserFacingError(texts.missing_permissions(target.mention, missing))
        if isinstance(target, discord.StageChannel) and not (permissions.mute_members or permissions.request_to_speak):
            raise UserFacingError(texts.stage_cannot_speak(target.mention))
        present = len(target.members)
        if target.user_limit and present >= target.user_limit and not permissions.move_members:
            raise UserFacingError(texts.channel_full(target.mention, present, target.user_limit))
        now = dt.datetime.now(dt.UTC)
        async with before_answer("checking the daily budget"):  # the join is acknowledged after its checks
            limits = session_limits(self.bot.config, await self.bot.store.get(guild.id))
            used_s = (await self.bot.store.usage(guild.id, now.date().isoformat())).seconds
        if limits.daily_budget_s > 0 and used_s >= limits.daily_budget_s:
            raise UserFacingError(texts.budget_spent(limits.daily_budget_s / 60.0, seconds_to_utc_midnight(now)))

    async def _take_the_stage(self, target: VoiceTarget) -> str | None:
        """On a stage, become a speaker (with Mute Members) or ask to speak; returns a note for the reply."""
        if not isinstance(target, discord.StageChannel):
            return None
        permissions = target.permissions_for(target.guild.me)
        payload: dict[str, Any] = {"channel_id": str(target.id)}
        if permissions.mute_members:
            payload["suppress"] = False
        else:
            payload["request_to_speak_timestamp"] = dt.datetime.now(dt.UTC).isoformat()
        try:
            await self.bot.http.edit_my_voice_state(target.guild.id, payload)
        except discord.HTTPException as error:
            _log.warning("guild %s: could not take the stage: %s", target.guild.id, error)
            return texts.stage_cannot_speak(target.mention)
        return None if permissions.mute_members else texts.stage_requested(target.mention)

    @app_commands.command(name="leave", description="Make the bot leave the voice channel")
    async def leave(self, interaction: discord.Interaction[Any]) -> None:
        member = member_of(interaction)
        if is_manager(member, self.bot.config.manager_role):
            session = self._session(interaction)
        else:
            session = self._session_with_caller(interaction)
        await interaction.response.defer(thinking=True)
        await self.bot.sessions.leave(session.guild_id, reason="left by command", only=session)
        await reply(interaction, texts.left_channel(f"<#{session.channel_id}>"), ephemeral=False)

    @app_commands.command(name="reset", description="Start a fresh conversation in the same channel")
    @app_commands.checks.cooldown(*RESET_COOLDOWN)
    async def reset(self, interaction: discord.Interaction[Any]) -> None:
        session = self._session_with_caller(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        name = (await self.bot.store.get(session.guild_id)).persona
        try:
            persona = await self.bot.persona_book.load(session.guild_id, name)
        except PersonaError as error:  # the file broke since it was chosen: keep talking as before
            _log.warning("guild %s: persona %r not reloaded: %s", session.guild_id, name, error.reason)
            persona = None
        await session.reset(persona)
        await reply(interaction, texts.RESET)

    @app_commands.command(name="say", description="The bot answers this text out loud in the voice channel")
    @app_commands.describe(text="What to say to the bot")
    @app_commands.checks.cooldown(*SAY_COOLDOWN)
    async def say(self, interaction: discord.Interaction[Any], text: app_commands.Range[str, 1, 1000]) -> None:
        session = self._session_with_caller(interaction)
        await session.say(text)
        await reply(interaction, f"🗣️ {text}")

    @app_commands.command(name="status", description="Who is talking, latency, and what this session costs")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        session = self._session(interaction)
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        await reply(interaction, embed=await session.status_embed(self.bot.store))

    @app_commands.command(name="talk", description="Push-to-talk: start or stop being heard by the bot")
    async def talk(self, interaction: discord.Interaction[Any]) -> None:
        session = self._session_with_caller(interaction)
        if getattr(session, "mode", None) is not ListeningMode.PUSH_TO_TALK:
            raise UserFacingError(texts.NOT_PUSH_TO_TALK)
        on = session.toggle_push_to_talk(interaction.user.id)
        await reply(interaction, texts.PUSH_TO_TALK_ON if on else texts.PUSH_TO_TALK_OFF)

    @app_commands.command(name="privacy", description="Keep your words out of transcripts, or your voice from the bot")
    @app_commands.describe(
        transcripts="Show what you say in transcripts (off: you appear as '(someone)', without your words)",
        listening="Let the bot hear you (off: your voice is never sent to the model)",
    )
    async def privacy(
        self, interaction: discord.Interaction[Any], transcripts: bool | None = None, listening: bool | None = None
    ) -> None:
        member = member_of(interaction)
        guild_id = member.guild.id
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        if transcripts is not None or listening is not None:
            await self.bot.store.set_privacy(
                guild_id,
                member.id,
                no_transcript=None if transcripts is None else not transcripts,
                no_listen=None if listening is None else not listening,
            )
            session = self.bot.sessions.get(guild_id)
            if session is not None:
                await session.refresh_privacy()  # at once, not from the next session
        choice = await self.bot.store.privacy(guild_id, member.id)
        await reply(
            interaction,
            texts.PRIVACY_SAVED.format(
                transcripts="hidden" if choice.no_transcript else "shown",
                listening="off" if choice.no_listen else "on",
            ),
        )

    @app_commands.command(name="forget-me", description="Delete what the bot stored about you here (keeps opt-outs)")
    async def forget_me(self, interaction: discord.Interaction[Any]) -> None:
        member = member_of(interaction)
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        session = self.bot.sessions.get(member.guild.id)
        if session is not None:
            await session.forget_member(member.id)  # what the live session holds and has not written yet
        rows = await self.bot.store.delete_user(member.id, member.guild.id)
        kept = await self.bot.store.privacy(member.guild.id, member.id) != Privacy()
        await reply(interaction, texts.forgot_you(rows, kept))

    @app_commands.command(name="usage", description="Voice minutes and estimated cost today and this month")
    async def usage(self, interaction: discord.Interaction[Any]) -> None:
        guild = member_of(interaction).guild
        await defer(interaction)  # the store may take longer than Discord's 3 s to answer a command
        await reply(interaction, embed=await usage_embed(self.bot, guild.id, dt.datetime.now(dt.UTC).date()))

    @app_commands.command(name="help", description="What the bot does and which commands there are")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        await reply(interaction, embed=help_embed())

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Start a fresh conversation when a moderator drags the bot elsewhere, end the session when one
        disconnects it, and keep the alone timer current."""
        session = self.bot.sessions.get(member.guild.id)
        if session is None:
            return
        if self.bot.user is not None and member.id == self.bot.user.id:
            if after.channel is None:
                await self.bot.sessions.leave(member.guild.id, reason="disconnected from voice", only=session)
                return
            if before.channel is not None and before.channel != after.channel:
                _log.info("guild %s: moved to channel %s by a moderator", member.guild.id, after.channel.id)
                target = after.channel
                if isinstance(target, VoiceTarget) and await self.bot.sessions.follow(session, target) is not None:
                    await self._take_the_stage(target)
                return
            session.on_presence_changed()
            return
        channels = {c.id for c in (before.channel, after.channel) if c is not None}
        if session.channel_id in channels and before.channel != after.channel:
            session.on_presence_changed()

    def _session(self, interaction: discord.Interaction[Any]) -> Session:
        session = self.bot.sessions.get(member_of(interaction).guild.id)
        if session is None:
            raise UserFacingError(texts.NOT_CONNECTED)
        return session

    def _session_with_caller(self, interaction: discord.Interaction[Any]) -> Any:
        member = member_of(interaction)
        session = self._session(interaction)
        if member.voice is None or member.voice.channel is None or member.voice.channel.id != session.channel_id:
            raise UserFacingError(texts.CALLER_NOT_WITH_BOT)
        return session


async def usage_embed(bot: VoiceBot, guild_id: int, today: dt.date) -> discord.Embed:
    """Minutes and cost today and this month against the daily budget, and the month's top talkers."""
    store = bot.store
    day = today.isoformat()
    month_start = today.replace(day=1).isoformat()
    used_today = await store.usage(guild_id, day)
    month = await store.usage_since(guild_id, month_start)
    budget = (await store.get(guild_id)).daily_budget_min
    budget_min = budget if budget is not None else bot.config.daily_budget_min
    embed = discord.Embed(title="Voice usage")
    limit = f" of {budget_min:.0f} min" if budget_min else " (no daily budget)"
    embed.add_field(name="Today", value=f"{used_today.minutes:.1f} min{limit} · ${used_today.cost_usd:.3f}")
    embed.add_field(name="This month", value=f"{month.minutes:.1f} min · ${month.cost_usd:.3f}")
    talkers = await store.top_talkers(guild_id, month_start, 5)
    lines = [f"<@{user_id}>: {seconds / 60:.1f} min" for user_id, seconds in talkers]
    embed.add_field(name="Top talkers this month", value="\n".join(lines) or "nobody yet", inline=False)
    return embed


def help_embed() -> discord.Embed:
    embed = discord.Embed(title=texts.HELP_TITLE, description=texts.HELP_DESCRIPTION)
    for name, value in texts.HELP_FIELDS:
        embed.add_field(name=name, value=value, inline=False)
    return embed


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(VoiceCog(bot))  # type: ignore[arg-type]
