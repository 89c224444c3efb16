from __future__ import annotations

from bot.session.limits import SessionLimits, SessionTimer, StopReason


def test_leaves_only_after_being_alone_for_the_whole_idle_time() -> None:
    timer = SessionTimer(SessionLimits(idle_leave_s=60), started_at_s=1000.0)
    timer.set_alone(True, 1010.0)
    assert timer.check(1069.0) is None
    timer.set_alone(False, 1069.5)  # someone came back: the count starts again
    timer.set_alone(True, 1080.0)
    timer.set_alone(True, 1100.0)  # still alone: keeps the first moment
    assert timer.check(1139.0) is None
    assert timer.check(1140.0) is StopReason.ALONE


def test_max_session_length() -> None:
    timer = SessionTimer(SessionLimits(max_session_s=600), started_at_s=0.0)
    assert timer.check(599.9) is None
    assert timer.check(600.0) is StopReason.MAX_LENGTH


def test_daily_budget_counts_earlier_sessions_today() -> None:
    timer = SessionTimer(SessionLimits(daily_budget_s=900), started_at_s=100.0)
    assert timer.check(100.0 + 299, used_today_before_s=600) is None
    assert timer.remaining_today_s(100.0 + 299, used_today_before_s=600) == 1.0
    assert timer.check(100.0 + 300, used_today_before_s=600) is StopReason.DAILY_BUDGET
    unlimited = SessionTimer(SessionLimits(daily_budget_s=0), started_at_s=0.0)
    assert unlimited.check(500.0, used_today_before_s=10**9) is None
    assert unlimited.remaining_today_s(1.0, 0.0) is None
