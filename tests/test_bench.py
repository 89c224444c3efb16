"""The benchmark command runs and reports what it claims (no speed is asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bench.__main__ as bench_main
from bench import cpu_path, load, resampling, soak, store_latency, summary, tool_turn
from bench.timing import Options, percentile
from bot.audio.resample import DiscordToRealtimeResampler, RealtimeToDiscordResampler
from bot.voice.playback import OPUS_SILENCE_FRAME
from tests.store.pg_server import in_ci


def test_resampling_benchmark_reports_every_implementation_and_quality() -> None:
    result = resampling.run(repeats=1)
    impls = {row["impl"] for row in result["rows"]}
    assert impls == {"ours", "soxr HQ", "soxr VHQ", "scipy resample_poly"}
    ours = [row for row in result["rows"] if row["impl"] == "ours"]
    assert all(row["audio_s_per_cpu_s"] > 0 and row["speed_vs_soxr_hq"] > 0 for row in ours)
    assert all(row["snr_vs_soxr_vhq_db"] >= 40 for row in ours)
    assert result["rejection_15khz_db"] >= 60
    markdown = "\n".join(resampling.iter_markdown(result))
    speed_rows = [line for line in markdown.splitlines() if line.startswith(("| 48k stereo", "| 24k mono"))]
    assert sum("| ours |" in line for line in speed_rows) == len(ours)
    assert "soxr VHQ **in float**" in markdown and "Streaming delay" in markdown


def test_resampling_quality_is_against_soxr_in_float_on_speech_noise_and_the_transition_band() -> None:
    quality = resampling.quality()
    rows = {(row["direction"], row["signal"]): row for row in quality["snr"]}
    assert set(rows) == {(d, s) for d in ("48k -> 24k", "24k -> 48k") for s in ("speech", "white noise")}
    for row in rows.values():
        # no int16 output can beat the float reference rounded to int16
        assert all(row[name] <= row["int16_ceiling_db"] + 0.05 for name in ("ours", "soxr HQ", "soxr VHQ"))
    down = [row["tone_hz"] for row in quality["tones"] if row["direction"] == "48k -> 24k"]
    assert min(down) < 11_000 and any(11_000 <= f <= 13_000 for f in down) and max(down) > 13_000
    # the delay is measured the same way for every resampler; ours matches what its class declares
    delays = quality["delay_ms"]
    assert delays["48k -> 24k"]["ours"] == pytest.approx(DiscordToRealtimeResampler.delay_ms, abs=0.05)
    assert delays["24k -> 48k"]["ours"] == pytest.approx(RealtimeToDiscordResampler.delay_ms, abs=0.05)
    assert all(delays[d]["soxr HQ"] > 0 and delays[d]["soxr VHQ"] > 0 for d in delays)


def test_bench_command_writes_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_main, "HERE", tmp_path)
    assert bench_main.main(["--repeats", "1", "--only", "resampling"]) == 0
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["machine"]["cores"] >= 1 and raw["resampling"]["rows"]
    assert (tmp_path / "RESULTS.md").read_text().startswith("# Benchmark results")


def test_cpu_path_benchmark_runs_every_stage_and_both_paths() -> None:
    result = cpu_path.run(Options(quick=True))
    frames = round(result["audio_seconds"] * 1000 / 20)
    # every 20 ms of room audio becomes one append (less the mixer's priming and the resampler's held-back tail)
    assert frames - 5 <= result["appends_per_run"] <= frames
    assert frames - 2 <= result["frames_played_per_run"] <= frames + 2
    assert len(result["stages"]) == 15 and all(row["ms_per_s"] > 0 for row in result["stages"])
    assert [row["speakers"] for row in result["paths"]] == list(cpu_path.SPEAKER_COUNTS)
    for row in result["paths"]:
        assert row["both_ms_per_s"] == pytest.approx(row["receive_ms_per_s"] + row["playback_ms_per_s"], abs=0.01)
        assert row["conversations_per_core"] == pytest.approx(1000 / row["both_ms_per_s"], rel=0.01)
    markdown = "\n".join(cpu_path.iter_markdown(result))
    assert markdown.startswith("## 2. CPU per conversation") and markdown.count("| playback |") == 7


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(v) for v in range(1, 101)], 0.99) == 99.0
    assert percentile([5.0], 0.99) == 5.0


def test_load_benchmark_drives_conversations_over_loopback() -> None:
    result = load.run(Options(quick=True))
    assert [(row["conversations"], row["player"]) for row in result["levels"]] == [(2, p) for p in load.PLAYERS]
    for row in result["levels"]:
        assert row["server_connections"] == 2 and row["schema_problems"] == [] and row["script_errors"] == []
        assert row["reconnects"] == 0 and row["dropped_audio_bytes"] == 0 and row["errors"] == []
        assert row["bot_cpu_s"] > 0 and row["bot_cores_used"] > 0 and row["peak_rss_mb"] > 0
        # 2 speakers talking 0.72 s every 3 s, for 4 s: the room sends speech plus its silence tail, 20 ms a frame
        assert row["inbound"]["count"] >= 2 * (load.SPEECH_FRAMES + load.ROOM_TAIL_MS // 20) - 10
        assert 0 <= row["inbound"]["p50_ms"] <= row["inbound"]["p99_ms"] <= row["inbound"]["max_ms"]
        # every answer the server sent before the end was made ready, and latencies pair server and bot clocks
        assert row["outbound_ready"]["count"] == row["answers_sent"] >= 1
        assert 0 <= row["outbound_ready"]["p50_ms"] <= row["outbound_ready"]["p99_ms"]
        # the heard figure includes the playback source's lead silence (200 ms), so it cannot be below it
        assert row["outbound_heard"]["p50_ms"] >= 200 - 20
        assert row["underrun_frames"] >= 0 and row["packets_undelivered"] >= 0
    before_after = "\n".join(summary.iter_markdown({"load": result}))
    met = {row["player"]: load.meets_targets(row) for row in result["levels"]}
    expected = f"| {2 if met[load.PLAYERS[0]] else 'none'} (`{load.PLAYERS[0]}` player) "
    assert expected + f"| {2 if met[load.SHARED_PLAYER] else 'none'} (`{load.SHARED_PLAYER}`) |" in before_after
    markdown = "\n".join(load.iter_markdown(result))
    assert (
        markdown.startswith("## 3. Load")
        and "0 errors in the bot's receive path" in markdown
        and markdown.count("\n| 2 | 1 | ") == len(load.PLAYERS)
    )


def test_tool_turn_benchmark_times_every_call_both_ways() -> None:
    result = tool_turn.run(Options(quick=True))
    proto, wire = result["protocol"], result["loopback"]
    assert proto["turns"] == tool_turn.QUICK_TURNS
    assert 0 < proto["tool_p50_us"] <= proto["p99_us"] and 0 < proto["p50_us"] <= proto["p99_us"]
    assert wire["turns"] == wire["tool_calls_finished"] == tool_turn.QUICK_TURNS and wire["tool_calls_failed"] == 0
    assert wire["schema_problems"] == [] and wire["script_errors"] == []
    # the output is sent before the follow-up response.create, and both after arguments.done went out
    assert 0 < wire["output_p50_ms"] <= wire["create_p50_ms"] <= wire["create_p99_ms"] <= wire["create_max_ms"]
    markdown = "\n".join(tool_turn.iter_markdown(result))
    assert markdown.startswith("## 4. Function-call turn overhead") and markdown.count("| loopback,") == 2


def test_bench_command_quick_runs_every_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_main, "HERE", tmp_path)
    # (the load part has its own test above; here the command runs the two quicker parts)
    assert bench_main.main(["--quick", "--only", "cpu_path", "tool_turn"]) == 0
    raw = json.loads((tmp_path / "results.json").read_text())
    assert set(raw) == {"machine", "date", "command", "cpu_path", "tool_turn"}
    assert raw["command"] == "python -m bench --quick --only cpu_path tool_turn"
    report = (tmp_path / "RESULTS.md").read_text()
    assert f"Written by `{raw['command']}`" in report
    assert all(f"## {part}." in report for part in (2, 4)) and "## 3." not in report
    # the before/after summary leads the report, with this run's own codec figures
    stages = {row.get("key"): row["ms_per_s"] for row in raw["cpu_path"]["stages"]}
    assert report.index("## Before and after") < report.index("## 2.")
    assert f"| {stages['encode_discordpy']} (discord.py) | {stages['encode_bot']} (the bot's) |" in report
    assert f"| {stages['decode_discordpy']} (discord.py) | {stages['decode_bot']} (the bot's) |" in report
    assert "most conversations" not in report  # no load part in this run, so no load row


def test_bench_command_rejects_nonsense_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_main.main(["--load-levels", "0"])
    assert "--load-levels" in capsys.readouterr().err


def test_load_level_shares_conversations_over_bot_processes() -> None:
    row = load.run_level(2, 4.0, load.PLAYERS[1], processes=2)
    assert row["processes"] == 2 and row["server_connections"] == 2 and row["errors"] == []
    assert row["inbound"]["count"] > 0 and row["bot_cores_used"] > 0
    with pytest.raises(ValueError, match="processes"):
        load.run_level(1, 1.0, processes=2)


def test_the_voice_sender_variant_counts_a_gap_inside_an_answer_and_not_between_answers() -> None:
    ticks = [0]
    source = load.BenchOpusPlayback(lambda: ticks[0])
    tone = (np.sin(np.arange(2400) / 5) * 8000).astype("<i2").tobytes()  # 100 ms at 24 kHz

    def run_ticks(count: int, *, read: bool = True) -> list[bool]:
        """One sender tick each: True where an audio packet was handed out."""
        audio = []
        for _ in range(count):
            if read:
                packet = source.read()
                audio.append(packet not in (b"", OPUS_SILENCE_FRAME))
            ticks[0] += 1
        return audio

    source.feed("a", tone)
    first = run_ticks(20)
    run_ticks(7, read=False)  # the answer ran dry: the sender stops reading an idle source
    source.feed("a", tone)  # ... and more of the same answer arrives late
    second = run_ticks(20)
    last_audio = max(i for i, a in enumerate(first) if a)
    resumed = len(first) + 7 + second.index(True)
    assert source.underrun_frames == resumed - last_audio - 1 > 7
    assert source.answers_heard == 1

    run_ticks(30, read=False)
    source.feed("b", tone)  # a new answer after a pause is not an underrun
    run_ticks(20)
    assert source.answers_heard == 2 and source.underrun_frames == resumed - last_audio - 1


def test_store_latency_benchmark_times_every_call_on_both_backends() -> None:
    result = store_latency.run(Options(quick=True))
    if "postgres" in result["skipped"] and in_ci():
        pytest.fail(f"PostgreSQL is required in CI: {result['skipped']['postgres']}")
    backends = [row["backend"] for row in result["levels"]]
    assert backends == ["sqlite"] + ([] if "postgres" in result["skipped"] else ["postgres"])
    for row in result["levels"]:
        assert row["conversations"] == 2 and row["errors"] == []
        # 2 s with a command every 0.5 s: the command stream ran, one operation after another
        assert {"get", "usage", "top_talkers", "update"} <= {op["op"] for op in row["ops"]}
        for op in row["ops"]:
            assert op["calls"] >= 1 and 0 < op["p50_ms"] <= op["p95_ms"] <= op["p99_ms"] <= op["max_ms"]
        assert 0 <= row["loop_late_p99_ms"] <= row["loop_late_max_ms"]
    markdown = "\n".join(store_latency.iter_markdown(result))
    assert markdown.startswith("## 7. Store latency")
    assert markdown.count("| sqlite | 2 |") == len(result["levels"][0]["ops"])
    if "postgres" in result["skipped"]:
        pytest.skip(f"PostgreSQL not measured: {result['skipped']['postgres']}")


def test_soak_benchmark_runs_the_whole_bot_and_judges_every_claim() -> None:
    result = soak.run(Options(quick=True))
    assert result["turns"] == result["turns_heard"] == result["turns_answered"] >= 3
    assert result["audio_s"] >= soak.QUICK_AUDIO_S and len(result["samples"]) == result["turns"]
    assert set(result["checks"]) >= {"every turn answered", "no more threads", "no more file descriptors"}
    grown = [sample["tasks_beyond_first"] for sample in result["samples"]]
    assert all(result["checks"].values()), (result["checks"], grown)
    markdown = "\n".join(soak.iter_markdown(result))
    assert markdown.startswith("## 6. Soak") and markdown.count("| yes |") == len(result["checks"])


def test_soak_checks_catch_growth_after_the_warm_up() -> None:
    """A task, thread or descriptor that outlives its turn grows the count sample by sample; each check says so."""
    flat = {"rss_mb": 50.0, "blocks": 1000, "tasks": 20, "threads": 4, "fds": 30, "receiver_streams": 3}
    samples = [{**flat, "audio_s": 10.0 * number} for number in range(1, 11)]
    result = {"audio_s": 100.0, "turns": 10, "turns_heard": 10, "turns_answered": 10, "samples": samples}
    assert all(soak.checks(result).values())
    for key in ("tasks", "threads", "fds"):
        leaking = [{**sample, key: sample[key] + index} for index, sample in enumerate(samples)]
        judged = soak.checks({**result, "samples": leaking})
        assert [name for name, passed in judged.items() if not passed] == [
            {"tasks": "no more asyncio tasks", "threads": "no more threads", "fds": "no more file descriptors"}[key]
        ]
