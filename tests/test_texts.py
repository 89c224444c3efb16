from __future__ import annotations

from bot import texts
from bot.session.limits import StopReason


def test_each_stop_reason_has_its_own_notice() -> None:
    notices = {texts.session_ended(reason) for reason in StopReason}
    assert len(notices) == len(StopReason)


def test_tool_call_line_is_compact() -> None:
    line = texts.tool_call_line("get_your_info", '{"query": "food"}', "x" * 500, limit=40)
    assert line.startswith("-# 🔧 `get_your_info(")
    assert len(line) < 120 and line.count("…") == 1


def test_missing_permissions_lists_names() -> None:
    assert texts.missing_permissions("#general", ["Connect", "Speak"]) == (
        "I need the **Connect**, **Speak** permission in #general."
    )
