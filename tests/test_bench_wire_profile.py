"""The profile summaries of bench/wire_profile.py, on synthetic py-spy output and tick records (no py-spy run)."""

from __future__ import annotations

import os

from bench.wire_profile import summarise_raw, summarise_thread_cpu, summarise_ticks, thread_kind

RAW = "\n".join(
    [
        "thread (0x1): MainThread;<module> (x.py:1);BaseEventLoop._run_once (asyncio/base_events.py:1);"
        "RoomClock._run (bot/voice/room_clock.py:9) 6",
        "thread (0x2): voice-sender;Thread.run (threading.py:1);VoiceSender.tick (bot/voice/sender.py:3);"
        "OpusEncoder.encode (bot/voice/opus_encoder.py:5) 3",
        "thread (0x3): voice-socket-reader:0xabc;SocketReader._do_run (discord/voice_state.py:156) 1",
        "thread (0x4): voice-socket-reader:0xdef;SocketReader._do_run (discord/voice_state.py:156) 0",
        "not a stack line",
    ]
)


def test_threads_are_told_apart_by_name() -> None:
    assert thread_kind("MainThread", []) == "event loop (MainThread)"
    assert thread_kind("voice-sender", []) == "VoiceSender"
    assert thread_kind("voice-socket-reader:0x7f", []) == "discord.py socket readers"
    assert thread_kind("voice-keep-alive-handler:0x7f", []) == "discord.py voice keep-alive"
    assert thread_kind("keep-alive-handler:shard-None", []) == "discord.py main-gateway keep-alive"
    assert thread_kind("sqlite-store_0", []) == "store worker"
    assert thread_kind("ThreadPoolExecutor-0_0", ["_worker (concurrent/futures/thread.py:83)"]).startswith("executor")


def test_a_raw_profile_is_summarised_per_thread_kind_with_shares_and_functions() -> None:
    text = summarise_raw(RAW)
    assert "samples: 10" in text
    assert "| event loop (MainThread) | 1 | 6 | 60.0% |" in text
    assert "| VoiceSender | 1 | 3 | 30.0% |" in text
    assert "| discord.py socket readers | 2 | 1 | 10.0% |" in text  # two threads, one sample between them
    assert "100.0%  OpusEncoder.encode (bot/voice/opus_encoder.py)" in text  # own samples, line numbers dropped
    assert "100.0%  VoiceSender.tick (bot/voice/sender.py)" in text  # bot/ frames including callees


def test_tick_intervals_over_25_ms_are_counted_within_the_window_only() -> None:
    ticks = [[t / 1000, 0.002, 0.001, 1] for t in (1000, 1020, 1040, 1070, 1090, 5000)]  # one 30 ms interval
    ticks.append([1100 / 1000, 0.001, 0.001, 0])  # a tick with no packet is not an answer's tick
    data = {"ticks": ticks, "sleeps": [[0.018, 0.004, 1.0], [0.018, 0.5, 9.0]], "switch_interval_s": 0.005}
    text = summarise_ticks(data, 0.5, 2.0)
    assert "busy tick-to-tick intervals over 25 ms: 1 of 4 (25.0%)" in text
    assert "| sleep overshoot (wake-up: CPU, then GIL) | 4.00 |" in text  # the sleep at 9 s is outside
    assert "switch interval: 5 ms" in text


def test_thread_cpu_is_summed_per_thread_kind_in_ms_per_second() -> None:
    hz = os.sysconf("SC_CLK_TCK")
    names = {1: "MainThread", 2: "voice-socket-reader:0x1", 3: "voice-socket-reader:0x2"}
    before = {1: (0, 0), 2: (hz, 0), 3: (0, 0)}
    after = {1: (hz, hz), 2: (2 * hz, 0), 3: (hz, hz), 4: (0, hz)}  # thread 4 was not in the dump
    text = summarise_thread_cpu(names, before, after, 2.0)
    assert "| event loop (MainThread) | 500.0 | 500.0 | 33.3% |" in text
    assert "| discord.py socket readers | 1000.0 | 500.0 | 50.0% |" in text
    assert "| other (no Python thread: libraries' own) | 0.0 | 500.0 | 16.7% |" in text
    assert "| the process | 1500.0 | 1500.0 | 100% |" in text
