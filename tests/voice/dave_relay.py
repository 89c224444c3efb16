"""The asyncio driver of the loopback gateway's DAVE group: events in, one at a time; messages out, to the bot and
to in-process members; the gateway's timeouts.

:class:`DaveRelay` wraps the sans-I/O :class:`~tests.voice.dave_group.DaveDeliveryService`. The gateway hands it the
bot's DAVE messages and sends what it returns for the bot (``send_to_bot``); simulated members
(:class:`~tests.voice.dave_member.SimulatedMember`) answer in-process, each answer reaching the group after the
member's latency as an event of its own. A round without a valid commit and a transition someone never gets ready
for end after ``timeout_s``, as on Discord, so one stuck member cannot stall the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tests.voice.dave_group import OP_ANNOUNCE_COMMIT, OP_WELCOME, DaveDeliveryService, Outgoing
from tests.voice.dave_member import SimulatedMember

_log = logging.getLogger(__name__)


class DaveRelay:
    """Carries one call's DAVE messages between the group logic, the bot and the simulated members."""

    def __init__(
        self, service: DaveDeliveryService, send_to_bot: Callable[[Outgoing], Awaitable[None]], timeout_s: float
    ) -> None:
        self.service = service
        self.members: dict[int, SimulatedMember] = {}
        self.bot_user_id: int | None = None
        self._send_to_bot = send_to_bot
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._held: list[Outgoing] = []
        self._timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def settled(self) -> bool:
        """No proposal, commit or transition in flight, and nothing left to deliver."""
        return not self.service.busy and not self._held and not self._tasks

    async def from_bot(self, message: Outgoing) -> None:
        """A DAVE message of the bot's (key package, commit and welcome, ready, invalid commit)."""
        await self.event(self.service.handle, message)

    async def join(self, member: SimulatedMember) -> None:
        self.members[member.user_id] = member
        await self.event(self.service.connect, member.user_id)
        self._from_member(member, member.start())

    async def leave(self, user_id: int) -> None:
        self.members.pop(user_id, None)
        await self.event(self.service.disconnect, user_id)

    async def event(self, handler: Callable[..., list[Outgoing]], *args: Any) -> None:
        """Run one event through the group (one at a time, in arrival order) and deliver what it says to send."""
        async with self._lock:
            await self._deliver(handler(*args))
            if not self._bot_is_catching_up():
                held, self._held = self._held, []
                await self._deliver(held)
            self._arm_timers()

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()

    async def _deliver(self, messages: list[Outgoing]) -> None:
        for message in messages:
            if message.user_id == self.bot_user_id:
                await self._send_to_bot(message)
            elif (member := self.members.get(message.user_id)) is not None:
                if message.op in (OP_ANNOUNCE_COMMIT, OP_WELCOME) and self._bot_is_catching_up():
                    self._held.append(message)
                    continue
                self._from_member(member, member.receive(message))

    def _bot_is_catching_up(self) -> bool:
        """The bot has a commit or welcome to process for the transition under way.

        Discord's clients keep their send key until a transition is executed; ``davey`` switches as soon as it
        processes a commit. So that simulated members behave like Discord's clients towards the bot (they never send
        with a key the bot cannot have yet), they get the commit or welcome once the bot has reported ready.
        """
        transition = self.service.transition
        return transition is not None and self.bot_user_id in transition.waiting

    def _from_member(self, member: SimulatedMember, replies: list[Outgoing]) -> None:
        """A member's answers reach the group after its latency, each as an event of its own."""
        for reply in replies:
            self._spawn(self._after_latency(member, reply))

    async def _after_latency(self, member: SimulatedMember, reply: Outgoing) -> None:
        if member.latency_s:
            await asyncio.sleep(member.latency_s)
        if self.members.get(member.user_id) is member:  # still in the call
            await self.event(self.service.handle, reply)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("DAVE event failed", exc_info=task.exception())

    def _arm_timers(self) -> None:
        service = self.service
        if service.round is not None:
            self._arm(("round", service.round.round_id), service.round_timeout)
        if service.transition is not None:
            self._arm(("transition", service.transition.transition_id), service.transition_timeout)

    def _arm(self, key: tuple[str, int], handler: Callable[[int], list[Outgoing]]) -> None:
        if key not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(self._timeout_s, lambda: self._spawn(self.event(handler, key[1])))
