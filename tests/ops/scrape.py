"""Reading a bot process's ``/healthz`` and ``/metrics`` over real HTTP, as an orchestrator and Prometheus do."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def healthz(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status, await response.json()


async def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``, parsed with prometheus-client's own parser (so the text format is checked)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_for_health(port: int, *, ready: bool = True, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll ``/healthz`` until it says ``ready`` (200) or not (503); the JSON it gave then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            status, body = await healthz(port)
            if (status == 200) == ready:
                return body
        except aiohttp.ClientError:
            pass
        if loop.time() > deadline:
            raise AssertionError(f"/healthz on port {port} did not become {'ready' if ready else 'unready'}")
        await asyncio.sleep(0.1)
