"""The wire benchmark's figures from synthetic timelines: what is paired with what, underruns by gaps, the share of a
turn, and a level held only if every run holds (no speed is asserted; the timelines are made up)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import summary, wire
from bench import wire_stats as ws
from bench.timing import Options
from bench.wire_stats import Append, Conversation, Packet, ServerTurn
from bot.realtime import client_events as ce


def _appends(start_s: float, priming_frames: int, voiced_frames: int, delay_s: float) -> list[Append]:
    """The room's appends for one spurt: ``priming_frames`` of exact silence, then one frame per 20 ms tick."""
    out = [Append(start_s + 0.02 * i + delay_s, 960, 960) for i in range(priming_frames)]
    for k in range(voiced_frames):
        out.append(Append(start_s + 0.02 * (priming_frames + k) + delay_s, 960, 0))
    return out


def test_inbound_pairs_each_datagram_with_the_append_carrying_the_start_of_its_audio() -> None:
    arrivals = [10.0 + 0.02 * k for k in range(5)]
    # two ticks of priming silence, then frame k is appended at tick 2 + k, 3 ms after the tick
    appends = _appends(10.0, 2, 5, 0.003)
    latencies, missing = ws.inbound_ms([arrivals], appends)
    assert missing == 0
    assert latencies == pytest.approx([43.0] * 5)  # 2 priming ticks (40 ms) + 3 ms


def test_inbound_finds_audio_that_starts_inside_an_append_and_counts_frames_never_sent() -> None:
    arrivals = [1.0 + 0.02 * k for k in range(4)]
    # the first append carries 100 zero bytes of a held-back tail, then the first frame's start
    appends = [Append(1.005, 960, 100), Append(1.025, 960, 0), Append(1.045, 960, 0)]
    latencies, missing = ws.inbound_ms([arrivals], appends)
    # frame k starts at byte 100 + 960 k: frames 0-2 are in appends 0-2, frame 3 (byte 2980) was never appended
    assert latencies == pytest.approx([5.0, 5.0, 5.0])
    assert missing == 1


def test_inbound_keeps_spurts_apart() -> None:
    first = [1.0, 1.02]
    second = [4.0, 4.02]
    appends = _appends(1.0, 0, 2, 0.001) + _appends(4.0, 1, 2, 0.002)
    latencies, missing = ws.inbound_ms([first, second], appends)
    assert missing == 0 and latencies == pytest.approx([1.0, 1.0, 22.0, 22.0])


def test_packets_belong_to_the_answer_whose_first_delta_came_last() -> None:
    packets = [Packet(1.0, True), Packet(2.1, False), Packet(2.12, True), Packet(0.5, True)]
    by_item = ws.answers([(2.0, "b"), (0.9, "a")], packets)
    assert by_item == {"a": [Packet(1.0, True)], "b": [Packet(2.1, False), Packet(2.12, True)]}


def test_every_gap_over_25_ms_inside_an_answer_is_an_underrun_whatever_its_cause() -> None:
    # lead-in silence, audio, one late packet (a stalled sender), a restarted clock (40 ms), then trailing silence
    times = [0.0, 0.02, 0.04, 0.06, 0.09, 0.11, 0.15, 0.17, 0.30, 0.32]
    audible = [False, False, True, True, True, True, True, True, False, False]
    packets = [Packet(t, a) for t, a in zip(times, audible, strict=True)]
    assert ws.underrun_gaps_ms(packets) == pytest.approx([30.0, 40.0])  # the gap before trailing silence is not one
    assert ws.underrun_gaps_ms([Packet(0.0, False), Packet(0.5, False)]) == []


def _conversation(*, late_sender: bool = False, heard: bool = True) -> Conversation:
    arrivals = [1.0 + 0.02 * k for k in range(10)]  # last voiced datagram in at 1.18
    appends = _appends(1.0, 1, 10, 0.002)
    # the server: the end of speech arrived 1.205, VAD stopped 0.5 s later, response.create 1.72, model 0.1 s
    turn = ServerTurn("item_1", 1.205, 1.705, 1.72, 1.82)
    deltas = [(1.822, "item_1")]
    packets: list[Packet] = []
    if heard:
        t = 1.825
        packets = [Packet(t + 0.02 * i, i >= 3) for i in range(20)]
        if late_sender:
            packets = packets[:10] + [Packet(p.sent_s + 0.05, p.audible) for p in packets[10:]]
    waits = [0.5] * len(arrivals)  # the socket reader handed each to the receiver 0.5 ms after it was sent
    return Conversation([arrivals], appends, deltas, packets, [turn], socket_wait_ms=waits)


def test_run_figures_measure_both_ways_the_share_and_the_cpu() -> None:
    figures = ws.run_figures([_conversation(), _conversation()], cpu_s=0.2, wall_s=10.0)
    assert figures["inbound"]["count"] == 20 and figures["inbound_p50_ms"] == pytest.approx(22.0)
    assert figures["socket_wait"]["count"] == 20 and figures["socket_wait"]["p99_ms"] == pytest.approx(0.5)
    assert figures["outbound_p50_ms"] == pytest.approx(3.0)  # first packet 1.825 - delta read 1.822
    assert figures["first_audible"]["p50_ms"] == pytest.approx(63.0)  # after three lead-in packets
    # the last frame's inbound 22 ms + the bot's reaction (1.705 -> 1.72) + first delta sent 1.82 -> audible 1.885
    assert figures["share_p50_ms"] == pytest.approx(22.0 + 15.0 + 65.0)
    assert figures["server_vad_wait"]["p50_ms"] == pytest.approx(500.0)
    assert figures["cpu_ms_per_conversation_s"] == pytest.approx(10.0)
    assert figures["underruns"] == 0 and figures["answers_unheard"] == 0 and figures["answers_sent"] == 2


def test_a_late_sender_and_an_answer_never_heard_are_counted() -> None:
    figures = ws.run_figures([_conversation(late_sender=True), _conversation(heard=False)], cpu_s=0.0, wall_s=1.0)
    assert figures["underruns"] == 1 and figures["underrun_max_gap_ms"] == pytest.approx(70.0)
    assert figures["answers_sent"] == 2 and figures["answers_heard"] == 1 and figures["answers_unheard"] == 1


def _run(inbound_p99: float, underruns: int = 0) -> dict[str, Any]:
    return {
        "inbound": {"count": 100},
        "answers_sent": 10,
        "underruns": underruns,
        "answers_unheard": 0,
        "inbound_p50_ms": 5.0,
        "inbound_p99_ms": inbound_p99,
        "outbound_p50_ms": 4.0,
        "outbound_p99_ms": 9.0,
        "cpu_ms_per_conversation_s": 3.0,
        "share_p50_ms": 30.0,
    }


def test_checks_give_each_target_its_margin() -> None:
    checks = {c["target"]: c for c in ws.checks(_run(40.0))}
    assert checks["inbound p99 ms"]["passed"] is False and checks["inbound p99 ms"]["margin"] == pytest.approx(-5.0)
    assert checks["inbound p50 ms"]["passed"] is True and checks["inbound p50 ms"]["margin"] == pytest.approx(15.0)
    assert len(checks) == len(ws.TARGETS)


def test_a_level_is_held_only_if_every_run_holds() -> None:
    good = [_run(10.0), _run(12.0), _run(11.0), _run(9.0), _run(13.0)]
    summary = ws.level_summary(good)
    assert summary["held"] and summary["runs_held"] == 5
    assert summary["spread"]["inbound_p99_ms"] == {"median": 11.0, "min": 9.0, "max": 13.0}
    assert good[summary["median_run"]]["inbound_p99_ms"] == 11.0
    one_bad = [*good[:4], _run(10.0, underruns=1)]
    summary = ws.level_summary(one_bad)
    assert not summary["held"] and summary["runs_held"] == 4
    assert summary["spread"]["underruns"]["median"] == 0  # the median hides it; the verdict does not
    worst = {c["target"]: c for c in summary["worst_checks"]}
    assert worst["underruns"]["passed"] is False
    empty = {**_run(1.0), "inbound": {"count": 0}}
    assert not ws.holds(empty)


def test_the_wire_benchmark_times_the_whole_bot_socket_to_socket() -> None:
    """``--quick``: 2 conversations, 2 runs. Every figure is paired from real stamps; no speed is asserted."""
    result = wire.run(Options(quick=True))
    (level,) = result["levels"]
    assert level["conversations"] == 2 and len(level["runs"]) == wire.QUICK_RUNS
    for run in level["runs"]:
        failures = {key: run[key] for key in ("dave_failed", "reconnects", "gateway", "realtime_server", "share")}
        # every voiced datagram measured was paired with an append, or counted as never appended
        assert run["inbound"]["count"] + run["frames_never_appended"] == run["voiced_datagrams_sent"] > 0
        arrived = run["voiced_datagrams_sent"] - run["voiced_datagrams_lost"]
        assert run["inbound"]["p50_ms"] > 0  # after the socket, never before it
        # read after it was sent: the bot's reader may stamp a datagram a little before the gateway process, descheduled
        # right after its sendto, stamps the return (one clock, two processes), but never a millisecond before
        assert run["socket_wait"]["count"] == arrived and run["socket_wait"]["p50_ms"] > -1.0
        # each answer the server sent was paired with the bot's reads and packets (or counted as never heard)
        assert run["answers_sent"] >= 1 and run["answers_heard"] + run["answers_unheard"] == run["answers_sent"]
        assert run["outbound"]["count"] == run["first_audible"]["count"] == run["answers_heard"]
        assert run["outbound"]["p50_ms"] <= run["first_audible"]["p50_ms"]  # the lead-in comes first
        assert run["share"]["count"] >= 1, failures
        # the whole path ran: DAVE both ways, the server's schema checks, the gateway's own figures
        assert run["dave_failed"] == 0 and run["gateway"]["undecryptable"] == 0, failures
        assert run["gateway"]["audio_frames_alice_decrypted"] > 0 and run["gateway"]["bot_packets_received"] > 0
        assert run["realtime_server"]["schema_problems"] == [] and run["realtime_server"]["script_errors"] == [], (
            failures
        )
        assert run["realtime_server"]["connections"] == 2 and run["reconnects"] == 0, failures
        assert run["cpu_ms_per_conversation_s"] > 0 and run["bot_cores_used"] > 0 and run["held"] == ws.holds(run)
    summary = level["summary"]
    assert summary["held"] == all(run["held"] for run in level["runs"])
    markdown = "\n".join(wire.iter_markdown(result))
    assert markdown.startswith("## 3. Load at the wire")
    verdict = "**held**" if summary["held"] else "not held"
    assert f"| {summary['runs_held']} / 2 |" in markdown and verdict in markdown
    assert markdown.count("pass (") + markdown.count("**FAIL** (") == len(ws.TARGETS)


def test_the_share_belongs_to_the_spurt_the_vad_ended_even_when_it_ended_early() -> None:
    """The VAD may put the end of speech before the last voiced datagram (a quiet last syllable): the turn is still
    the spurt that began before ``speech_stopped``, never the one before it."""
    first = [1.0 + 0.02 * k for k in range(10)]
    second = [4.0 + 0.02 * k for k in range(10)]  # last voiced datagram in at 4.18
    appends = _appends(1.0, 1, 10, 0.002) + _appends(4.0, 1, 10, 0.002)
    early_end = ServerTurn("item_2", 4.1, 4.6, 4.61, 4.71)  # the VAD's end of speech reached the server at 4.1
    packets = [Packet(4.72 + 0.02 * i, i >= 2) for i in range(10)]
    conversation = Conversation([first, second], appends, [(4.712, "item_2")], packets, [early_end])
    figures = ws.run_figures([conversation], cpu_s=0.0, wall_s=1.0)
    # inbound 22 ms + reaction 10 ms (4.6 -> 4.61) + first delta sent 4.71 -> first audible 4.76: 50 ms
    assert figures["share_p50_ms"] == pytest.approx(22.0 + 10.0 + 50.0)


def test_the_report_names_a_short_run_and_the_summary_counts_only_levels_held_in_every_run() -> None:
    def level(count: int, held: bool) -> dict[str, Any]:
        runs = [_run(10.0) | {"share": {"p50_ms": 30.0, "p99_ms": 31.0}} for _ in range(5)]
        for run in runs:
            run.update(
                {
                    "outbound": {"p50_ms": 4.0, "p99_ms": 9.0},
                    "first_audible": {"p50_ms": 204.0},
                    "socket_wait": {"p99_ms": 0.1},
                    "bot_cores_used": 0.5,
                    "gateway": {"late_p99_ms": 1.0, "cores_used": 0.1, "late_max_ms": 2.0, "undecryptable": 0},
                    "realtime_server": {"schema_problems": [], "script_errors": []},
                    "reconnects": 0,
                    "voiced_datagrams_lost": 0,
                    "dave_failed": 0,
                }
            )
        if not held:
            runs[3]["underruns"] = 2
        return {"conversations": count, "runs": runs, "summary": ws.level_summary(runs)}

    result = {
        "seconds_per_run": 30.0,
        "runs_per_level": 5,
        "processes": 2,
        "levels": [level(50, True), level(100, False)],
    }
    markdown = "\n".join(wire.iter_markdown(result))
    assert "Below issue 16's minimum" not in markdown
    assert "| 50 | 5 / 5 |" in markdown and "| 100 | 4 / 5 |" in markdown and "| **FAIL** (-2) |" in markdown
    assert "| most conversations held in every run, whole bot at the wire (part 3) | | 50 |" in "\n".join(
        summary.iter_markdown({"wire": result})
    )
    short = "\n".join(wire.iter_markdown({**result, "seconds_per_run": 6.0}))
    assert "Below issue 16's minimum of 5 runs of 30 s" in short


@pytest.mark.parametrize("pcm", [bytes(960), bytes(101) + b"\x01" + bytes(858), b"\x05" * 960, bytes(7) + b"\x01"])
def test_the_append_probe_reads_sizes_and_leading_zeros_from_the_base64(pcm: bytes) -> None:
    message = json.dumps(ce.audio_append(pcm), separators=(",", ":"))  # as the bot's protocol writes it
    audio_bytes, zeros = wire._append_audio(message)
    assert audio_bytes == len(pcm)
    exact = len(pcm) - len(pcm.lstrip(b"\0"))
    assert exact - 2 <= zeros <= exact  # within one base64 character: the first frame is still found to the sample
