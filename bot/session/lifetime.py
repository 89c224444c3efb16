"""A session's lifetime: the limit watchdog (alone too long, too long overall, the daily budget), the spoken
goodbye when a limit ends it, and closing, which releases every link in order even when one step fails.

Closing never stops half-way: each step (detaching the audio, clearing playback, writing usage, closing the
conversation, leaving the voice channel, stopping the poster) is tried on its own, whatever the previous one did.
The watchdog survives a failing store: usage it cannot write is kept for the next step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot import texts
from bot.session.limits import SessionLimits, SessionTimer, StopReason
from bot.session.protocols import Conversation, Playback
from bot.session.record import SessionRecord
from bot.session.state import SessionState

_log = logging.getLogger(__name__)

LIMIT_CHECK_INTERVAL_S = 5.0
#: Longest wait for the spoken goodbye when a limit ends the session.
GOODBYE_WAIT_S = 8.0
GOODBYE_POLL_S = 0.05


class SessionLifetime:
    """Watches one session's limits and closes it: once, releasing every link whatever fails on the way."""

    def __init__(
        self,
        state: SessionState,
        record: SessionRecord,
        playback: Playback,
        conversation: Conversation,
        *,
        limits: SessionLimits,
        used_today_before_s: float,
        releases: Sequence[Callable[[], Awaitable[None]]],
        detach: Callable[[], None],
    ) -> None:
        """
        Args:
            releases: What closing releases, in order (the conversation, the voice connection, posting...).
            detach: Stops the audio routing; called first on close.
            used_today_before_s: The guild's usage today before this session (for the daily budget).
        """
        self._state = state
        self._record = record
        self._playback = playback
        self._conversation = conversation
        self._releases = tuple(releases)
        self._detach = detach
        self.timer = SessionTimer(limits, started_at_s=state.now())
        self._used_today_before_s = used_today_before_s
        self.goodbye_wait_s = GOODBYE_WAIT_S
        self._watchdog: asyncio.Task[None] | None = None

    def start(self, on_limit: Callable[[StopReason], Awaitable[None]]) -> None:
        """Start the limit watchdog (on the event loop); ``on_limit`` ends the session."""
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch(on_limit), name=f"limits-{self._state.guild_id}"
        )

    def elapsed_s(self) -> float:
        return self.timer.elapsed_s(self._state.now())

    def set_alone(self, alone: bool) -> None:
        self.timer.set_alone(alone, self._state.now())

    def check(self) -> StopReason | None:
        return self.timer.check(self._state.now(), self._used_today_before_s)

    async def say_goodbye(self, notice: str) -> None:
        """Have the persona say ``notice`` and let it play out, for at most :attr:`goodbye_wait_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.goodbye_wait_s
        try:
            await self._conversation.send_text(texts.goodbye_prompt(notice))
        except Exception:
            _log.exception("guild %s: the spoken goodbye could not be asked for", self._state.guild_id)
            return
        started = False
        while loop.time() < deadline:
            await asyncio.sleep(GOODBYE_POLL_S)
            playing = self._playback.is_playing
            if started and not playing:
                return
            started = started or playing

    async def close(self, reason: str) -> None:
        """Stop listening and playing, record usage, release every link, whatever fails on the way. Idempotent."""
        if self._state.closed:
            return
        self._state.closed = True
        guild_id = self._state.guild_id
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        for name, local_step in (("detaching audio", self._detach), ("clearing playback", self._playback.clear)):
            try:
                local_step()
            except Exception:
                _log.exception("guild %s: error while closing (%s): %s", guild_id, reason, name)
        await self._record.settle()  # the answers' writes under way: what they could not write joins the last one
        if not await self._record.write_usage(self.elapsed_s()):
            _log.error(
                "guild %s: usage could not be written when the session closed; given up: %s",
                guild_id,
                self._record.unwritten.describe(),
            )
        for step in self._releases:
            try:
                await step()
            except Exception:
                _log.exception("guild %s: error while closing (%s)", guild_id, reason)
        _log.info("guild %s: session closed (%s)", guild_id, reason)

    async def _watch(self, on_limit: Callable[[StopReason], Awaitable[None]]) -> None:
        while not self._state.closed:
            await asyncio.sleep(LIMIT_CHECK_INTERVAL_S)
            await self._record.write_usage(self.elapsed_s())  # never raises: a failing store keeps it for the next step
            reason = self.check()
            if reason is not None:
                await on_limit(reason)
                return
