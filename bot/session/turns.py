"""Turn-taking in a shared room: whose audio reaches the model, who spoke each turn, which turns are answered, and
when speech over the bot is a real interruption.

- **Labels**: each committed user turn is labelled for the model with who spoke in it (from the speaker timeline).
- **Who gets answered** (:class:`~bot.room.listening.ListeningMode`): ``always`` answers every turn, ``name`` only
  turns that address the persona by name (others stay in the conversation as context), ``push-to-talk`` sends only
  the audio of users who hold the floor. The session, not the server, asks for each answer.
- **Barge-in** is decided here, not by the server: speech during playback interrupts only once the
  :class:`~bot.room.echo_guard.BargeInGuard` has heard a real voice for long enough (a cough or echo does not).
  Turns spoken over the bot that did not interrupt it are kept as context and not answered.
- **Privacy**: users who opted out of listening are never sent, in any mode, and their voice cannot interrupt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from bot.room.attribution import speaker_label
from bot.room.echo_guard import BargeInGuard
from bot.room.listening import ListeningMode, PushToTalk, is_addressed, should_send_audio
from bot.session.protocols import Conversation, Playback, VoiceLink
from bot.session.record import SessionRecord
from bot.session.state import SessionState

#: Speech the server reports is attributed to whoever was voiced from this long before ``speech_started``.
ATTRIBUTION_LEAD_S = 0.5
#: A user's frame louder than this counts as their talk time (and as the latest voiced frame of a turn).
VOICED_FLOOR_DBFS = -45.0
#: Committed turns remembered until their transcript arrives.
PENDING_TURNS_KEPT = 32


@dataclass(slots=True)
class _Turn:
    """A committed user turn waiting for its transcript."""

    speakers: frozenset[int]
    awaiting_name: bool


class TurnTaking:
    """The shared room's rules applied to one session's live events."""

    def __init__(
        self,
        state: SessionState,
        voice: VoiceLink,
        playback: Playback,
        conversation: Conversation,
        record: SessionRecord,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._state = state
        self._voice = voice
        self._playback = playback
        self._conversation = conversation
        self._record = record
        self._spawn = spawn
        self.guard = BargeInGuard()
        self.push_to_talk = PushToTalk()
        self._speech_started_at_s: float | None = None
        self._speech_stopped_at_s: float | None = None
        self._interrupted_this_turn = False
        self._busy_at_speech_start = False
        self._turns: OrderedDict[str, _Turn] = OrderedDict()

    # -- whose audio is heard --------------------------------------------------------------------------------------

    def may_send(self, user_id: int) -> bool:
        """The audio gate: whose audio reaches the model."""
        if self._state.privacy_of(user_id).no_listen:
            return False
        return should_send_audio(self._state.mode, user_id, self.push_to_talk)

    def toggle_push_to_talk(self, user_id: int) -> bool:
        """Flip ``user_id``'s push-to-talk; returns whether their audio is now sent."""
        return self.push_to_talk.toggle(user_id)

    def hear(self, user_id: int, level_dbfs: float, now_s: float) -> None:
        """A frame of ``user_id`` at ``level_dbfs``: the guard's evidence, talk time and the turn's last voice."""
        if self._state.privacy_of(user_id).no_listen:
            return  # not heard at all: no talk time, no interruption
        self.guard.set_playing(self._playback.is_playing)
        self.guard.feed(user_id, level_dbfs, now_s)
        if level_dbfs > VOICED_FLOOR_DBFS and self.may_send(user_id):
            self._record.voiced_frame(user_id, now_s)
        if self.guard.armed and self.guard.should_interrupt(now_s):
            self._barge_in()

    # -- the server's view of the turn ---------------------------------------------------------------------------

    def answer_audio_arrived(self) -> None:
        self.guard.set_playing(True)

    def speech_started(self) -> None:
        now_s = self._state.now()
        self._speech_started_at_s = now_s
        self._interrupted_this_turn = False
        self._busy_at_speech_start = self._playback.is_playing
        if not self._playback.is_playing:
            self.guard.set_playing(False)
            return
        if not self._state.settings.interruptions:
            return
        self.guard.arm(now_s)
        if self.guard.should_interrupt(now_s):  # the look-back may already hold enough voice
            self._barge_in()

    def speech_stopped(self) -> None:
        now_s = self._state.now()
        self._speech_stopped_at_s = now_s
        self._record.speech_stopped(now_s)
        if self.guard.armed:  # the speech ended before it counted as an interruption: a cough, an echo
            self.guard.disarm()
            self._record.barge_in_ignored()

    def turn_committed(self, item_id: str, previous_item_id: str | None) -> None:
        """The server committed a user turn: label it with its speakers, then answer it or keep it as context."""
        speakers = frozenset(self._speakers_of_turn())
        self._record.turn_spoken_by(speakers, self._state.now())
        label = speaker_label(speakers, self._voice.member_names())
        self._spawn(self._conversation.label_turn(item_id, previous_item_id, label))
        spoken_over = self._busy_at_speech_start and not self._interrupted_this_turn
        name_mode = self._state.mode is ListeningMode.NAME
        self._turns[item_id] = _Turn(speakers, awaiting_name=not spoken_over and name_mode)
        while len(self._turns) > PENDING_TURNS_KEPT:
            self._turns.popitem(last=False)
        if not spoken_over and not name_mode:
            self._answer()
        elif spoken_over:
            self._record.not_answered()

    def user_transcript(self, item_id: str, text: str) -> frozenset[int]:
        """The words of a committed turn: in name mode, answer if they call the persona. Returns the speakers."""
        turn = self._turns.pop(item_id, None)
        if turn is None:
            return frozenset(self._speakers_of_turn())
        if turn.awaiting_name:
            persona = self._state.persona
            if is_addressed(text, (persona.name, *persona.aliases)):
                self._answer()
            else:
                self._record.not_answered()
        return turn.speakers

    # -- changes -----------------------------------------------------------------------------------------------

    def settings_changed(self) -> None:
        """A mode other than ``name`` answers nothing by name: pending turns stop waiting for it."""
        if self._state.mode is not ListeningMode.NAME:
            for turn in self._turns.values():
                turn.awaiting_name = False

    def retain(self, present: Iterable[int]) -> None:
        """Only the users in ``present`` are in the channel: forget the floor and guard state of everyone else."""
        present = frozenset(present)
        self.push_to_talk.retain(present)
        self.guard.retain(present)

    def forget_pending(self) -> None:
        """A fresh conversation: turns of the old one are not answered."""
        self._turns.clear()

    # -- inside --------------------------------------------------------------------------------------------------

    def _answer(self) -> None:
        self._record.answer_requested()
        self._playback.start_lead_in()  # the anti-clipping silence plays while the model thinks, not before its answer
        self._spawn(self._conversation.respond())

    def _barge_in(self) -> None:
        """A real interruption: stop at once, and truncate the answer at what people heard."""
        self.guard.disarm()
        if not self._playback.is_playing:
            return
        played = self._playback.clear()
        self.guard.set_playing(False)
        self._interrupted_this_turn = True
        self._record.interrupted()
        self._spawn(self._conversation.interrupt(played))

    def _speakers_of_turn(self) -> set[int]:
        now_s = self._state.now()
        start = (self._speech_started_at_s or now_s) - ATTRIBUTION_LEAD_S
        end = self._speech_stopped_at_s if self._speech_stopped_at_s is not None else now_s
        return self._voice.speakers_between(start, max(end, start))
