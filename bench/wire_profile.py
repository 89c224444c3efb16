"""A one-off profile of the load at the wire (issue 16): py-spy on a bot process, and the sender's tick timing.

Usage (as root, with ``py-spy`` installed: ``pip install py-spy``; a tool, not a project dependency)::

    python -m bench.wire_profile --conversations 50 --seconds 40 --out bench/profiles/wire-50

It makes one run of :func:`bench.wire.run_once` (two bot processes by default, as ``python -m bench --only wire``)
and, once the measured window starts, runs ``py-spy record`` on the first bot process in turn with ``--gil``
(samples of the thread holding the GIL), without ``--idle`` (threads running or waiting for the GIL) and with
``--idle`` (every thread, wherever it waits), each ``--nonblocking`` so the bot is never paused (pausing it would
make the sender late by itself), then three ``py-spy dump`` snapshots. Each raw profile is summarised per thread
(share of samples, top functions by own samples, top ``bot/`` frames by samples including callees) into
``<out>-<mode>.txt``, with the command that made it at the top.

In the bot processes (``spawn`` imports this module in each child, see :func:`_instrument_child`) every
``VoiceSender`` records, per tick, when it started, its wall and thread CPU time and the packets it sent, and per
sleep how much longer than asked it slept (the wake-up waits for the CPU and then for the GIL). The summary goes to
``<out>-ticks.txt``: a tick interval over 25 ms is exactly what makes the wire bench count an underrun on the
connections sent late in that tick. ``WIRE_PROFILE_SWITCH_INTERVAL_S`` sets ``sys.setswitchinterval`` in the bot
processes (to measure its effect on the sender); ``WIRE_PROFILE_SOCKET_SEND=1`` sends packets with ``socket.send``
and encodes with libopus loaded as ``ctypes.CDLL``, both releasing the GIL, as before :mod:`bot.voice.udp_send` and
``bind_libopus_holding_gil`` (the "before"); ``WIRE_PROFILE_SENDER_NICE`` sets the sender thread's nice value.

Nothing here is run by ``python -m bench``; the results are quoted in ``bench/FINDINGS.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_TICKS_DIR_ENV = "WIRE_PROFILE_TICKS_DIR"
_SWITCH_ENV = "WIRE_PROFILE_SWITCH_INTERVAL_S"
_SOCKET_SEND_ENV = "WIRE_PROFILE_SOCKET_SEND"
_SENDER_NICE_ENV = "WIRE_PROFILE_SENDER_NICE"
_FLUSH_EVERY_S = 5.0
_LATE_INTERVAL_MS = 25.0

# -- in the bot processes --------------------------------------------------------------------------------------------


def _instrument_child() -> None:
    """Record every ``VoiceSender`` tick and sleep of this process into ``$WIRE_PROFILE_TICKS_DIR/ticks-<pid>.json``."""
    directory = os.environ.get(_TICKS_DIR_ENV)
    if not directory:
        return
    from bot.voice.sender import VoiceSender

    switch_s = os.environ.get(_SWITCH_ENV)
    if switch_s:
        sys.setswitchinterval(float(switch_s))
    nice = os.environ.get(_SENDER_NICE_ENV)
    if nice:
        original_run = VoiceSender._run

        def run(self: VoiceSender) -> None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(nice))
            original_run(self)

        VoiceSender._run = run  # type: ignore[method-assign]
    if os.environ.get(_SOCKET_SEND_ENV):
        from bot.voice import libopus, opus_encoder, udp_send

        udp_send.bind_libc_send = lambda: None  # type: ignore[assignment]  # the "before": socket.send
        opus_encoder.bind_libopus_holding_gil = libopus.bind_libopus  # type: ignore[attr-defined]  # releasing
    original_init = VoiceSender.__init__
    path = Path(directory) / f"ticks-{os.getpid()}.json"

    def init(self: VoiceSender, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        ticks: list[tuple[float, float, float, int]] = []  # start_s, wall_s, cpu_s, packets
        sleeps: list[tuple[float, float, float]] = []  # asked_s, overslept_s, at_s
        schedstat: list[tuple[float, int, int]] = []  # at_s, on-CPU ns, waiting-for-a-CPU ns (this thread, Linux)
        tick, sleep = self.tick, self._sleep
        last_flush = [time.monotonic()]

        def timed_tick() -> None:
            sent = self.stats.packets_sent
            start_s, start_cpu_s = time.monotonic(), time.thread_time()
            tick()
            end_s = time.monotonic()
            ticks.append((start_s, end_s - start_s, time.thread_time() - start_cpu_s, self.stats.packets_sent - sent))
            if end_s - last_flush[0] > _FLUSH_EVERY_S:
                last_flush[0] = end_s
                with contextlib.suppress(OSError, ValueError):
                    stat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text().split()
                    schedstat.append((end_s, int(stat[0]), int(stat[1])))
                data = {
                    "ticks": ticks,
                    "sleeps": sleeps,
                    "schedstat": schedstat,
                    "switch_interval_s": sys.getswitchinterval(),
                }
                path.write_text(json.dumps(data))

        def timed_sleep(wait_s: float) -> None:
            before_s = time.monotonic()
            sleep(wait_s)
            sleeps.append((wait_s, time.monotonic() - before_s - wait_s, before_s))

        self.tick = timed_tick  # type: ignore[method-assign]
        self._sleep = timed_sleep

    VoiceSender.__init__ = init  # type: ignore[method-assign]


if __name__ == "__mp_main__":  # a child made by multiprocessing's spawn
    _instrument_child()


# -- summaries ---------------------------------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_THREAD = re.compile(r"^thread \((?:0x)?[0-9a-fA-F]+\): ?(?P<name>.*)$")


def thread_kind(name: str, frames: list[str]) -> str:
    """Which of the bot's threads a sampled stack belongs to, from its name (and frames for the executor)."""
    if name == "MainThread":
        return "event loop (MainThread)"
    if name == "voice-sender":
        return "VoiceSender"
    if name.startswith("voice-socket-reader"):
        return "discord.py socket readers"
    if name.startswith("voice-keep-alive-handler"):
        return "discord.py voice keep-alive"
    if name.startswith("keep-alive-handler"):
        return "discord.py main-gateway keep-alive"
    if name.startswith("sqlite-store"):
        return "store worker"
    if name.startswith("asyncio") or any("concurrent/futures/thread.py" in f for f in frames):
        return f"executor ({name or 'unnamed'})"
    return f"other ({name or 'unnamed'})"


def _function(frame: str) -> str:
    match = _FRAME.match(frame)
    return f"{match['function']} ({match['file']})" if match else frame


def summarise_raw(text: str, *, top: int = 12) -> str:
    """A per-thread summary of a ``py-spy record --threads --format raw`` profile."""
    by_kind: collections.Counter[str] = collections.Counter()
    threads_of: dict[str, set[str]] = collections.defaultdict(set)
    own: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        head = _THREAD.match(parts[0])
        name = head["name"] if head else ""
        frames = parts[1:] if head else parts
        kind = thread_kind(name, frames)
        total += count
        by_kind[kind] += count
        threads_of[kind].add(parts[0])
        if frames:
            own[kind][_function(frames[-1])] += count
        for function in {_function(f) for f in frames if "bot/" in f or f.startswith("VoiceSender")}:
            inclusive[kind][function] += count
    lines = [f"samples: {total}", "", "| thread | threads | samples | share |", "| --- | --- | --- | --- |"]
    for kind, count in by_kind.most_common():
        lines.append(f"| {kind} | {len(threads_of[kind])} | {count} | {100 * count / max(total, 1):.1f}% |")
    for kind, count in by_kind.most_common():
        lines += ["", f"## {kind}: {count} samples", "", "own samples (leaf function), % of this thread kind:"]
        lines += [f"  {100 * n / count:5.1f}%  {function}" for function, n in own[kind].most_common(top)]
        if inclusive[kind]:
            lines.append("bot/ functions including callees:")
            lines += [f"  {100 * n / count:5.1f}%  {function}" for function, n in inclusive[kind].most_common(top)]
    return "\n".join(lines) + "\n"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise_ticks(data: dict[str, Any], from_s: float, to_s: float) -> str:
    """The sender's tick timing of one bot process between ``from_s`` and ``to_s`` (monotonic)."""
    ticks = [t for t in data["ticks"] if from_s <= t[0] <= to_s]
    busy = [t for t in ticks if t[3] > 0]
    intervals = [b[0] - a[0] for a, b in itertools.pairwise(busy)]
    late = [i for i in intervals if i * 1000 > _LATE_INTERVAL_MS]
    wall_ms = [t[1] * 1000 for t in busy]
    cpu_ms = [t[2] * 1000 for t in busy]
    wait_ms = [w - c for w, c in zip(wall_ms, cpu_ms, strict=True)]
    overslept_ms = [s[1] * 1000 for s in data["sleeps"] if from_s <= s[2] <= to_s]
    packets = [t[3] for t in busy]

    def row(label: str, values: list[float]) -> str:
        return (
            f"| {label} | {_percentile(values, 0.5):.2f} | {_percentile(values, 0.9):.2f} | "
            f"{_percentile(values, 0.99):.2f} | {max(values, default=0.0):.2f} |"
        )

    lines = [
        f"switch interval: {data.get('switch_interval_s', 0) * 1000:g} ms",
        f"ticks in the window: {len(ticks)}; with packets: {len(busy)}; packets per busy tick: "
        f"p50 {_percentile([float(p) for p in packets], 0.5):g}, max {max(packets, default=0)}",
        f"busy tick-to-tick intervals over {_LATE_INTERVAL_MS:g} ms: {len(late)} of {len(intervals)} "
        f"({100 * len(late) / max(len(intervals), 1):.1f}%)",
        "",
        "| ms | p50 | p90 | p99 | max |",
        "| --- | --- | --- | --- | --- |",
        row("busy tick-to-tick interval", [i * 1000 for i in intervals]),
        row("tick wall time", wall_ms),
        row("tick thread CPU time", cpu_ms),
        row("tick wall - CPU (waiting: GIL, CPU)", wait_ms),
        row("sleep overshoot (wake-up: CPU, then GIL)", overslept_ms),
    ]
    stats = [s for s in data.get("schedstat", []) if from_s <= s[0] <= to_s]
    if len(stats) >= 2:
        (t0, cpu0, queue0), (t1, cpu1, queue1) = stats[0], stats[-1]
        wall_s = t1 - t0
        cpu_s, queue_s = (cpu1 - cpu0) / 1e9, (queue1 - queue0) / 1e9
        asked_s = sum(s[0] for s in data["sleeps"] if t0 <= s[2] <= t1)
        other_s = wall_s - cpu_s - queue_s - asked_s
        lines += [
            "",
            f"the sender thread over {wall_s:.1f} s (Linux schedstat): on a CPU {100 * cpu_s / wall_s:.1f}%, "
            f"runnable but waiting for a CPU {100 * queue_s / wall_s:.1f}%, sleeping as asked (the 20 ms clock) "
            f"{100 * asked_s / wall_s:.1f}%, blocked otherwise (waiting for the GIL, a lock) "
            f"{100 * other_s / wall_s:.1f}%",
        ]
    return "\n".join(lines) + "\n"


# -- the parent --------------------------------------------------------------------------------------------------------


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    return found


_MODES = {
    "gil": ["--gil"],
    "active": [],
    "idle": ["--idle"],
}


_DUMP_THREAD = re.compile(r'^Thread (?P<tid>\d+) \([^)]*\): "(?P<name>[^"]*)"', re.MULTILINE)


def _task_cpu_ticks(pid: int) -> dict[int, tuple[int, int]]:
    """(user, system) clock ticks of each thread of ``pid``, from ``/proc/<pid>/task/<tid>/stat``."""
    ticks = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = (task / "stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()
            ticks[int(task.name)] = (int(fields[11]), int(fields[12]))
    return ticks


def summarise_thread_cpu(
    names: dict[int, str], before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], seconds: float
) -> str:
    """CPU per thread kind (user and system, ms per wall second) between two :func:`_task_cpu_ticks` readings."""
    hz = os.sysconf("SC_CLK_TCK")
    user: collections.Counter[str] = collections.Counter()
    system: collections.Counter[str] = collections.Counter()
    for tid, (user_after, system_after) in after.items():
        user_before, system_before = before.get(tid, (0, 0))
        kind = thread_kind(names[tid], []) if tid in names else "other (no Python thread: libraries' own)"
        user[kind] += user_after - user_before
        system[kind] += system_after - system_before
    total_user, total_system = sum(user.values()), sum(system.values())

    def ms_per_s(count: int) -> float:
        return 1000 * count / hz / seconds

    lines = ["| thread | user ms/s | system ms/s | share of the process |", "| --- | --- | --- | --- |"]
    for kind in sorted(user, key=lambda k: -(user[k] + system[k])):
        share = 100 * (user[kind] + system[kind]) / max(total_user + total_system, 1)
        lines.append(f"| {kind} | {ms_per_s(user[kind]):.1f} | {ms_per_s(system[kind]):.1f} | {share:.1f}% |")
    lines.append(f"| the process | {ms_per_s(total_user):.1f} | {ms_per_s(total_system):.1f} | 100% |")
    return "\n".join(lines) + "\n"


def _thread_cpu(pid: int, out: str, seconds: float) -> None:
    """Each thread's CPU over ``seconds`` (names from a ``py-spy dump``), into ``<out>-thread-cpu.txt``."""
    dumped = subprocess.run(
        [_py_spy(), "dump", "--pid", str(pid), "--nonblocking"], check=False, capture_output=True, text=True
    )
    names = {int(m["tid"]): m["name"] for m in _DUMP_THREAD.finditer(dumped.stdout)}
    before, start_s = _task_cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    after, wall_s = _task_cpu_ticks(pid), time.monotonic() - start_s
    header = f"# /proc/{pid}/task/*/stat over {wall_s:.1f} s, thread names from py-spy dump (no py-spy running)\n\n"
    Path(f"{out}-thread-cpu.txt").write_text(header + summarise_thread_cpu(names, before, after, wall_s))


def _profile(pid: int, out: str, seconds_each: float, rate: int) -> None:
    """Each thread's CPU, then py-spy record in each mode, one after the other, then three dumps; summaries next to
    ``out``."""
    _thread_cpu(pid, out, seconds_each)
    for mode, flags in _MODES.items():
        raw = f"{out}-{mode}.raw"
        command = [
            _py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds_each)),
            "--rate",
            str(rate),
            "--threads",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            raw,
            *flags,
        ]
        subprocess.run(command, check=False, capture_output=True, text=True)
        text = Path(raw).read_text() if Path(raw).exists() else ""
        header = f"# py-spy record, mode {mode}\n# {' '.join(['py-spy', *command[1:]])}\n\n"
        Path(f"{out}-{mode}.txt").write_text(header + summarise_raw(text))
    dumps = []
    for _ in range(3):
        dumped = subprocess.run(
            [_py_spy(), "dump", "--pid", str(pid), "--nonblocking"], check=False, capture_output=True, text=True
        )
        dumps.append(dumped.stdout)
        time.sleep(1.0)
    Path(f"{out}-dumps.txt").write_text(
        f"# py-spy dump --pid {pid} --nonblocking (3 snapshots, 1 s apart)\n\n" + "\n".join(dumps)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0, help="measured seconds of the run")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--profile-seconds", type=float, default=10.0, help="seconds per py-spy mode")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--no-py-spy", action="store_true", help="only the tick timing and the run's figures")
    parser.add_argument("--out", required=True, help="path prefix of the summaries")
    args = parser.parse_args(argv)

    from bench import wire

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pids: list[int] = []
    ready = threading.Event()
    original = wire._BotProcess

    class RecordingBotProcess(original):  # type: ignore[misc,valid-type]
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            pids.append(self.process.pid)

        def receive(self, timeout_s: float) -> Any:
            reply = super().receive(timeout_s)
            if reply == "ready" and pids and self.process.pid == pids[-1]:
                ready.set()
            return reply

    wire._BotProcess = RecordingBotProcess  # type: ignore[misc]
    measured: dict[str, float] = {}

    def profiler() -> None:
        if not ready.wait(wire.SETUP_TIMEOUT_S):
            return
        time.sleep(wire.START_DELAY_S + wire.WARM_UP_S + 1.0)
        measured["from_s"] = time.monotonic()
        if not args.no_py_spy:
            _profile(pids[0], args.out, args.profile_seconds, args.rate)
        measured["to_s"] = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="wire-profile-") as ticks_dir:
        os.environ[_TICKS_DIR_ENV] = ticks_dir
        thread = threading.Thread(target=profiler, daemon=True)
        thread.start()
        figures = wire.run_once(args.conversations, args.seconds, processes=args.processes)
        thread.join(5.0)
        end_s = time.monotonic()
        from_s = measured.get("from_s", 0.0)
        to_s = end_s if args.no_py_spy else measured.get("to_s", end_s)
        tick_lines = [
            f"# python -m bench.wire_profile {' '.join(sys.argv[1:] if argv is None else argv)}",
            f"# sender ticks from the first bot process, over the {to_s - from_s:.0f} s py-spy sampled it",
            "",
        ]
        for pid in pids:
            path = Path(ticks_dir) / f"ticks-{pid}.json"
            if path.exists():
                with contextlib.suppress(ValueError):
                    tick_lines += [
                        f"## bot process {pids.index(pid) + 1}",
                        "",
                        summarise_ticks(json.loads(path.read_text()), from_s, to_s),
                    ]
    keys = (
        "underruns",
        "underrun_max_gap_ms",
        "answers_unheard",
        "cpu_ms_per_conversation_s",
        "bot_cores_used",
        "inbound_p50_ms",
        "inbound_p99_ms",
        "outbound_p50_ms",
        "outbound_p99_ms",
    )
    run_lines = ["## the run's figures (bench.wire.run_once)", ""]
    run_lines += [f"- {key}: {figures.get(key)}" for key in keys if key in figures]
    run_lines += [f"- gateway: {figures.get('gateway')}"]
    Path(f"{args.out}-ticks.txt").write_text("\n".join(tick_lines + run_lines) + "\n")
    print(Path(f"{args.out}-ticks.txt").read_text())
    print(json.dumps({k: v for k, v in figures.items() if not isinstance(v, list)}, indent=1, default=str)[:3000])


if __name__ == "__main__":
    main()
