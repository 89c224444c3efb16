"""Each one-line feed counts what its place knows: the voice receive outcomes, a playback underrun (an answer's
audio running dry mid-answer, and not its normal end), the Realtime session's reconnects, errors and usage, and the
store's operation time. Counters are process-wide, so each test compares before and after."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bot.ops import metrics
from bot.ops.store_timing import timed_store
from bot.realtime import outputs as out
from bot.realtime.usage import Usage
from bot.store import StoreUnavailable
from bot.store.sqlite import DB_FILENAME, SqliteStore
from bot.voice.metrics import VoiceMetrics
from bot.voice.playback import PlaybackSource


def sample(name: str, **labels: str) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def delta(name: str, action: Callable[[], object], **labels: str) -> float:
    before = sample(name, **labels)
    action()
    return sample(name, **labels) - before


def tone_24k(ms: int) -> bytes:
    t = np.arange(ms * 24) / 24_000
    pcm16: bytes = np.rint(9000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    return pcm16


def test_voice_receive_outcomes_are_counted_by_reason() -> None:
    voice = VoiceMetrics()
    assert (
        delta("voicebot_voice_receive_packets_total", lambda: voice.add("decrypt_failed", 3), reason="decrypt_failed")
        == 3
    )
    assert voice.get("decrypt_failed") == 3  # the per-connection counter still counts as before


def test_an_answer_running_dry_mid_way_is_an_underrun_and_its_normal_end_is_not() -> None:
    source = PlaybackSource(prebuffer_ms=0, lead_silence_ms=0)

    def play_one_answer_with_a_gap() -> None:
        source.feed("a1", tone_24k(100))
        for _ in range(10):  # past the end of what has arrived: the answer runs dry
            source.read()
        source.feed("a1", tone_24k(100))  # more of the same answer: the listener heard a gap
        for _ in range(10):
            source.read()

    assert delta("voicebot_playback_underruns_total", play_one_answer_with_a_gap) == 1

    def play_two_whole_answers() -> None:
        for item in ("a2", "a3"):
            source.feed(item, tone_24k(100))
            for _ in range(10):
                source.read()

    assert delta("voicebot_playback_underruns_total", play_two_whole_answers) == 0


def test_realtime_reconnects_errors_and_usage_by_model() -> None:
    usage = out.UsageReport(part=Usage(input_tokens=120, output_tokens=80), total=Usage(), total_cost_usd=0.0)
    events: list[out.Output] = [
        out.SessionReady(reconnected=True),
        out.SessionReady(reconnected=False),
        out.ErrorReported(code="rate_limit_exceeded", message="slow down", fatal=False),
        out.ErrorReported(code=None, message="connection lost", fatal=False),
        usage,
    ]
    before = {
        "reconnects": sample("voicebot_realtime_reconnects_total"),
        "rate": sample("voicebot_realtime_errors_total", code="rate_limit_exceeded"),
        "none": sample("voicebot_realtime_errors_total", code="none"),
        "in": sample("voicebot_realtime_tokens_total", model="test-model", direction="input"),
        "out": sample("voicebot_realtime_tokens_total", model="test-model", direction="output"),
        "cost": sample("voicebot_realtime_cost_usd_total", model="test-model"),
    }
    for event in events:
        metrics.realtime_output(event, "test-model")
    assert sample("voicebot_realtime_reconnects_total") - before["reconnects"] == 1
    assert sample("voicebot_realtime_errors_total", code="rate_limit_exceeded") - before["rate"] == 1
    assert sample("voicebot_realtime_errors_total", code="none") - before["none"] == 1
    assert sample("voicebot_realtime_tokens_total", model="test-model", direction="input") - before["in"] == 120
    assert sample("voicebot_realtime_tokens_total", model="test-model", direction="output") - before["out"] == 80
    cost = sample("voicebot_realtime_cost_usd_total", model="test-model") - before["cost"]
    assert cost == pytest.approx(usage.part.cost_usd())


async def test_store_operations_are_timed_to_completion_on_a_real_store(tmp_path: Path) -> None:
    store = timed_store(await SqliteStore.open(tmp_path / DB_FILENAME, busy_timeout_s=0.2))
    count, total = "voicebot_store_operation_seconds_count", "voicebot_store_operation_seconds_sum"
    before = sample(count, operation="add_usage")
    await store.add_usage(1, "2026-11-30", seconds=5.0)
    assert sample(count, operation="add_usage") - before == 1
    assert (await store.usage(1, "2026-11-30")).seconds == 5.0  # the stand-in returns what the store returns
    assert str(tmp_path / DB_FILENAME) in store.description  # attributes pass through untimed
    locker = sqlite3.connect(tmp_path / DB_FILENAME, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock: the write waits 0.2 s, then fails
    try:
        before = sample(total, operation="update")
        with pytest.raises(StoreUnavailable):
            await store.update(1, {"voice": "ash"})
        assert sample(total, operation="update") - before >= 0.2  # the awaited wait is in the figure, not 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await store.close()
    before = sample(count, operation="get")
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.get(1)
    assert sample(count, operation="get") - before == 1  # a failing call (the store is closed) is timed too
