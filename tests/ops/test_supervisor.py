"""The cluster supervisor: how shards are split, how restarts back off, and the real thing -- ``python -m bot run
--processes 2`` against the local stand-in Discord API: two bot processes share the shards, commands are synced once,
a killed process comes back, SIGTERM stops them all (exit 0), and a rejected token stops the cluster (exit 2)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

from bot.ops.supervisor import ChildSpec, RestartBackoff, Supervisor, cluster_children, shard_text, split_shards
from tests.fake_discord_api import FakeDiscordAPI
from tests.ops.process import bot_env, finish, start_bot, wait_until
from tests.ops.scrape import wait_for_health


def test_shards_are_split_into_contiguous_ranges_of_near_equal_size() -> None:
    assert split_shards(list(range(5)), 2) == [(0, 1, 2), (3, 4)]
    assert split_shards([4, 5, 6, 7], 4) == [(4,), (5,), (6,), (7,)]
    assert split_shards([0, 1], 8) == [(0,), (1,)]  # never a process without a shard
    assert [shard_text(r) for r in split_shards([0, 1, 2, 3, 8], 2)] == ["0-2", "3,8"]


def test_restarts_back_off_and_a_stable_run_starts_again_from_the_first_wait() -> None:
    backoff = RestartBackoff(first_s=1.0, max_s=10.0)
    assert [backoff.delay_s(n) for n in (1, 2, 3, 4, 5, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_each_process_gets_its_shards_and_its_own_metrics_port(tmp_path: Path) -> None:
    environ = {"SHARD_ID": "3", "DISCORD_TOKEN": "t"}
    children = cluster_children(
        processes=2, shard_ids=[4, 5, 6], shard_count=8, metrics_port=9100, env_file=tmp_path / ".env",
        environ=environ, python="python3",
    )  # fmt: skip
    assert [c.name for c in children] == ["shards 4-5", "shards 6"]
    assert [(c.env["SHARD_IDS"], c.env["SHARD_COUNT"], c.env["METRICS_PORT"]) for c in children] == [
        ("4-5", "8", "9100"), ("6", "8", "9101"),
    ]  # fmt: skip
    assert all(c.env["SHARD_ID"] == "" and c.env["DISCORD_TOKEN"] == "t" for c in children)
    assert children[0].argv == (
        "python3", "-m", "bot", "--env-file", str(tmp_path / ".env"), "run", "--processes", "1",
        "--supervisor-pid", str(os.getpid()),
    )  # fmt: skip
    alone = cluster_children(processes=3, shard_ids=None, shard_count=None, metrics_port=None, env_file=Path(".env"))
    assert [c.env["SHARD_IDS"] for c in alone] == ["0", "1", "2"] and alone[0].env["SHARD_COUNT"] == "3"
    assert "METRICS_PORT" not in alone[0].env or alone[0].env["METRICS_PORT"] == os.environ.get("METRICS_PORT")


def two_free_ports() -> int:
    """A port p with p + 1 free too (each bot process serves on METRICS_PORT + its index)."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two neighbouring free ports")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_cluster_shares_the_shards_restarts_a_killed_process_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = two_free_ports()
    async with FakeDiscordAPI() as discord:
        env = bot_env(discord, tmp_path, METRICS_PORT=str(port), SHARD_COUNT="2")
        supervisor = await start_bot("run", "--processes", "2", env=env, cwd=tmp_path)
        try:
            first = await wait_for_health(port)
            second = await wait_for_health(port + 1)  # started a few seconds later: one IDENTIFY at a time
            assert (first["shard_ids"], second["shard_ids"]) == ([0], [1])
            assert first["shard_count"] == second["shard_count"] == 2
            assert sorted(i.shard for i in discord.identifies if i.shard) == [(0, 2), (1, 2)]
            assert discord.command_syncs == ["/applications/99/commands"]  # by the process with shard 0 only

            os.kill(first["pid"], signal.SIGKILL)
            await wait_until(lambda: gone(first["pid"]))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:
                again = await wait_for_health(port)
                if again["pid"] != first["pid"]:
                    break
                assert loop.time() < deadline, "the killed process was not restarted"
                await asyncio.sleep(0.1)
            assert again["shard_ids"] == [0]
        finally:
            supervisor.send_signal(signal.SIGTERM)
            code, _stdout, stderr = await finish(supervisor)
    assert code == 0, stderr[-3000:]
    assert "shards 0: exited with -9" in stderr and "restarting in 1.0 s" in stderr
    assert gone(again["pid"]) and gone(second["pid"])
    assert "Traceback" not in stderr


async def test_a_rejected_token_stops_the_cluster_instead_of_restarting_it(tmp_path: Path) -> None:
    async with FakeDiscordAPI(token="another-token") as discord:
        env = bot_env(discord, tmp_path, SHARD_COUNT="2")
        code, _stdout, stderr = await finish(await start_bot("run", "--processes", "2", env=env, cwd=tmp_path))
    assert code == 2
    assert stderr.count("Discord rejected DISCORD_TOKEN") == 1 and "restarting in" not in stderr


async def test_a_process_whose_supervisor_was_killed_stops_by_itself(tmp_path: Path) -> None:
    port = two_free_ports()
    async with FakeDiscordAPI() as discord:
        env = bot_env(discord, tmp_path, METRICS_PORT=str(port), SHARD_COUNT="2")
        supervisor = await start_bot("run", "--processes", "2", env=env, cwd=tmp_path)
        child = await wait_for_health(port)
        supervisor.kill()  # no signal passed on: the child must notice by itself
        await finish(supervisor)
        await wait_until(lambda: gone(child["pid"]), timeout_s=30)


async def test_a_process_that_cannot_be_started_stops_the_cluster(tmp_path: Path) -> None:
    missing = ChildSpec("shards 0", (str(tmp_path / "no-such-python"), "-m", "bot"), {})
    supervisor = Supervisor([missing], child_deadline_s=1.0, start_interval_s=0.0)
    assert await asyncio.wait_for(supervisor.run(), 30) == 1
