"""Fixtures shared by the loopback voice tests: a fake Discord voice server, and the real client connected to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.voice.client import ReceivingVoiceClient
from tests.voice.fake_gateway import FakeVoiceServer, LoopbackClient
from tests.voice.guild import lounge


@pytest.fixture
async def server() -> AsyncIterator[FakeVoiceServer]:
    server = FakeVoiceServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def voice(server: FakeVoiceServer) -> AsyncIterator[ReceivingVoiceClient]:
    client = LoopbackClient(server)
    async with client:
        channel = lounge(client)
        vc = await asyncio.wait_for(channel.connect(cls=ReceivingVoiceClient, timeout=10), 15)
        assert isinstance(vc, ReceivingVoiceClient)
        try:
            yield vc
        finally:
            await vc.disconnect(force=True)
