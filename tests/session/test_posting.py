from __future__ import annotations

import asyncio

import pytest

from bot.session.posting import MAX_MESSAGE_CHARS, Send, TextPoster, fit_message


class Channel:
    def __init__(self, *, delay_s: float = 0.0, fail_on: str | None = None) -> None:
        self.lines: list[str] = []
        self.delay_s = delay_s
        self.fail_on = fail_on

    async def send(self, text: str) -> object:
        await asyncio.sleep(self.delay_s)
        if text == self.fail_on:
            raise ConnectionError("503 from Discord")
        self.lines.append(text)
        return None


def always(channel: Channel) -> Send | None:
    return channel.send


async def test_lines_arrive_in_order_even_when_sending_is_slow() -> None:
    channel = Channel(delay_s=0.005)
    poster = TextPoster(lambda: always(channel))
    for n in range(10):
        poster.post(f"line {n}")
    await poster.close()
    assert channel.lines == [f"line {n}" for n in range(10)]
    assert poster.sent == 10 and poster.dropped == 0


async def test_a_failed_send_is_counted_and_the_next_line_still_goes() -> None:
    channel = Channel(fail_on="bad")
    poster = TextPoster(lambda: always(channel))
    for line in ("one", "bad", "two"):
        poster.post(line)
    await poster.close()
    assert channel.lines == ["one", "two"]
    assert poster.failed == 1


async def test_a_full_outbox_drops_the_oldest_lines() -> None:
    channel = Channel(delay_s=0.01)
    poster = TextPoster(lambda: always(channel), max_waiting=3)
    for n in range(8):
        poster.post(f"line {n}")
    await poster.close()
    assert channel.lines[-3:] == ["line 5", "line 6", "line 7"]
    assert poster.dropped >= 4 and len(channel.lines) + poster.dropped == 8


async def test_the_destination_is_looked_up_at_each_send() -> None:
    first, second = Channel(), Channel()
    target = [first]
    poster = TextPoster(lambda: always(target[0]))
    poster.post("a")
    await asyncio.sleep(0.01)
    target[0] = second
    poster.post("b")
    await poster.close()
    assert first.lines == ["a"] and second.lines == ["b"]


async def test_no_destination_drops_and_closed_poster_ignores_lines() -> None:
    poster = TextPoster(lambda: None)
    poster.post("lost")
    await poster.close()
    assert poster.dropped == 1
    poster.post("after close")
    await poster.close()
    assert poster.sent == 0


async def test_close_gives_up_on_a_hung_channel() -> None:
    channel = Channel(delay_s=10)
    poster = TextPoster(lambda: always(channel))
    poster.post("stuck")
    await asyncio.wait_for(poster.close(flush_timeout_s=0.05), 2)
    assert channel.lines == []


def test_long_lines_fit_discord() -> None:
    long = "x" * (MAX_MESSAGE_CHARS + 50)
    assert len(fit_message(long)) == MAX_MESSAGE_CHARS and fit_message(long).endswith("…")
    assert fit_message("short") == "short"
    with pytest.raises(ValueError):
        TextPoster(lambda: None, max_waiting=0)
