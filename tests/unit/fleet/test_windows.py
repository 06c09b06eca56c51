"""The time algebra of windows and freezes (gitops.fleet.windows): zones, DST, midnight, month
ends, levels, freeze precedence, starting only what can finish, overrides and what each covers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gitops.fleet.spec import Freeze, Maintenance, Window
from gitops.fleet.windows import Calendar, Level, local, occurrences

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0


def at(*parts: int, zone: ZoneInfo = BERLIN) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()  # type: ignore[misc]


def window(**fields: Any) -> Window:
    return Window.model_validate({"name": "w", "timeZone": "Europe/Berlin", **fields})


def freeze(**fields: Any) -> Freeze:
    base = {"name": "peak", "reason": "peak season", "owner": "sre", "timeZone": "Europe/Berlin"}
    return Freeze.model_validate({**base, **fields})


def fleet_level(*windows: Window, freezes: tuple[Freeze, ...] = ()) -> Level:
    return Level("fleet", "acme", Maintenance(windows=windows, freezes=freezes))


def shown(w: Window, since: float, until: float) -> list[tuple[str, str]]:
    return [(local(s.start, s.zone), local(s.end, s.zone)) for s in occurrences(w, since, until)]


WEEKNIGHTS = window(name="weeknights", schedule="0 22 * * Mon-Fri", duration="4h")


def test_a_closed_window_says_which_and_when_it_opens_in_its_zone() -> None:
    verdict = Calendar(at(2026, 12, 5, 12)).verdict([fleet_level(WEEKNIGHTS)], "image", HOUR)
    assert verdict.state == "closed"
    assert verdict.starts == at(2026, 12, 7, 22)
    assert verdict.reason == (
        "waits for window weeknights (Europe/Berlin), opens 2026-12-07T22:00+01:00"
    )


def test_an_open_window_lets_a_batch_start_that_can_finish_before_it_closes() -> None:
    verdict = Calendar(at(2026, 12, 7, 23)).verdict([fleet_level(WEEKNIGHTS)], "image", 2 * HOUR)
    assert verdict.open
    assert verdict.closes == at(2026, 12, 8, 2)


def test_a_batch_that_cannot_finish_before_the_window_closes_waits_for_the_next() -> None:
    verdict = Calendar(at(2026, 12, 8, 0, 30)).verdict([fleet_level(WEEKNIGHTS)], "image", 2 * HOUR)
    assert verdict.state == "short"
    assert verdict.starts == at(2026, 12, 8, 22)
    assert "too soon for a batch that may take 2h" in verdict.reason


def test_the_same_wall_time_in_two_zones_is_two_instants() -> None:
    tokyo = Window.model_validate(
        {"name": "t", "schedule": "0 22 * * *", "duration": "1h", "timeZone": "Asia/Tokyo"}
    )
    berlin = window(schedule="0 22 * * *", duration="1h")
    since = at(2026, 6, 1)
    (t,) = occurrences(tokyo, since, since + 86400)
    (b,) = occurrences(berlin, since, since + 86400)
    assert b.start - t.start == 7 * HOUR  # Berlin is UTC+2 in June, Tokyo UTC+9


@pytest.mark.parametrize(
    "declared",
    [
        {"schedule": "30 2 * * *", "duration": "1h"},
        {"days": ["Sun"], "startTime": "02:30", "endTime": "03:30"},
    ],
    ids=["cron", "weekly"],
)
def test_a_0230_start_on_the_night_the_clocks_spring_forward_opens_when_they_jump(
    declared: dict[str, Any],
) -> None:
    # 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that night.
    spans = occurrences(window(**declared), at(2026, 3, 29), at(2026, 3, 29, 12))
    assert len(spans) == 1
    assert local(spans[0].start, "Europe/Berlin") == "2026-03-29T03:00+02:00"


def test_a_window_spanning_the_autumn_repeat_hour_lasts_its_real_hours() -> None:
    # 2026-10-25 03:00 CEST falls back to 02:00 CET: the night has 25 hours.
    weekly = window(days=["Sat"], startTime="23:00", endTime="05:00")
    assert shown(weekly, at(2026, 10, 24), at(2026, 10, 26)) == [
        ("2026-10-24T23:00+02:00", "2026-10-25T05:00+01:00")
    ]
    (span,) = occurrences(weekly, at(2026, 10, 24), at(2026, 10, 26))
    assert span.end - span.start == 7 * HOUR
    cron = window(schedule="0 1 * * *", duration="3h")
    (night,) = occurrences(cron, at(2026, 10, 25), at(2026, 10, 25, 12))
    assert local(night.end, "Europe/Berlin") == "2026-10-25T03:00+01:00"  # 3 real hours


def test_a_start_in_the_autumn_repeat_hour_opens_once_at_its_first_occurrence() -> None:
    cron = window(schedule="30 2 * * *", duration="30m")
    spans = occurrences(cron, at(2026, 10, 25), at(2026, 10, 25, 12))
    assert [local(s.start, "Europe/Berlin") for s in spans] == ["2026-10-25T02:30+02:00"]


def test_a_window_crossing_midnight_is_open_after_midnight_and_belongs_to_its_start_day() -> None:
    fri = window(days=["Fri"], startTime="22:00", endTime="02:00")
    level = [fleet_level(fri)]
    assert Calendar(at(2026, 12, 12, 1)).verdict(level, "image", HOUR).open  # Saturday 01:00
    after = Calendar(at(2026, 12, 12, 22)).verdict(level, "image", HOUR)  # Saturday 22:00
    assert after.state == "closed"
    assert after.starts == at(2026, 12, 18, 22)


def test_a_window_on_the_last_day_of_the_month_crosses_into_the_next_month_and_year() -> None:
    last = window(schedule="0 22 L * *", duration="6h")
    assert shown(last, at(2026, 12, 1, 12), at(2027, 3, 2)) == [
        ("2026-12-31T22:00+01:00", "2027-01-01T04:00+01:00"),
        ("2027-01-31T22:00+01:00", "2027-02-01T04:00+01:00"),
        ("2027-02-28T22:00+01:00", "2027-03-01T04:00+01:00"),
    ]
    verdict = Calendar(at(2027, 1, 1, 1)).verdict([fleet_level(last)], "image", HOUR)
    assert verdict.open


def test_where_several_levels_declare_windows_every_one_must_allow_it() -> None:
    evenings = window(
        name="evenings",
        days=["Mon", "Tue", "Wed", "Thu", "Fri"],
        startTime="18:00",
        endTime="23:00",
    )
    late = Window.model_validate(
        {"name": "late", "schedule": "0 21 * * *", "duration": "4h", "timeZone": "Europe/Berlin"}
    )
    levels = [fleet_level(evenings), Level("cluster", "prod-eu-1", Maintenance(windows=(late,)))]
    early = Calendar(at(2026, 12, 7, 19)).verdict(levels, "image", HOUR)
    assert early.state == "closed"
    assert early.starts == at(2026, 12, 7, 21)
    assert "window late" in early.reason  # the level that opens last names the wait
    both = Calendar(at(2026, 12, 7, 21, 30)).verdict(levels, "image", HOUR)
    assert both.open
    assert both.closes == at(2026, 12, 7, 23)  # the first to close ends the period


def test_a_level_without_windows_does_not_restrict_and_none_at_all_is_always_open() -> None:
    assert Calendar(at(2026, 12, 5)).verdict([Level("fleet", "f", None)], "image", HOUR).open
    levels = [fleet_level(WEEKNIGHTS), Level("wave", "prod", Maintenance())]
    assert Calendar(at(2026, 12, 7, 22)).verdict(levels, "image", HOUR).open


def test_a_freeze_wins_over_an_open_window_and_says_until_when_and_why() -> None:
    one_off = freeze(start="2026-12-07T00:00:00+01:00", end="2026-12-09T00:00:00+01:00")
    levels = [fleet_level(WEEKNIGHTS), Level("cluster", "c", Maintenance(freezes=(one_off,)))]
    verdict = Calendar(at(2026, 12, 7, 23)).verdict(levels, "image", HOUR)
    assert verdict.state == "frozen"
    # The window of the 8th runs to 02:00 on the 9th: its last two hours are free of the freeze.
    assert verdict.starts == at(2026, 12, 9, 0)
    assert verdict.reason.startswith(
        "frozen until 2026-12-09T00:00+01:00: freeze peak: peak season (owner sre)"
    )


def test_a_batch_that_would_run_into_a_freeze_does_not_start() -> None:
    soon = freeze(start="2026-12-07T23:30:00+01:00", end="2026-12-08T06:00:00+01:00")
    levels = [fleet_level(WEEKNIGHTS, freezes=(soon,))]
    verdict = Calendar(at(2026, 12, 7, 23)).verdict(levels, "image", HOUR)
    assert verdict.state == "short"
    assert Calendar(at(2026, 12, 7, 23)).verdict(levels, "image", 20 * 60).open


def test_a_recurring_freeze_holds_every_time_it_recurs() -> None:
    weekends = freeze(days=["Sat"], startTime="00:00", endTime="00:00")  # a whole day
    levels = [fleet_level(freezes=(weekends,))]
    assert Calendar(at(2026, 12, 12, 12)).verdict(levels, "image", HOUR).state == "frozen"
    assert Calendar(at(2026, 12, 19, 12)).verdict(levels, "image", HOUR).state == "frozen"
    assert Calendar(at(2026, 12, 13, 12)).verdict(levels, "image", HOUR).open


def test_an_override_lifts_windows_but_not_freezes_unless_it_says_so() -> None:
    one_off = freeze(start="2026-12-05T00:00:00+01:00", end="2026-12-06T00:00:00+01:00")
    levels = [fleet_level(WEEKNIGHTS, freezes=(one_off,))]
    now = at(2026, 12, 5, 12)
    assert Calendar(now, ignore_windows=True).verdict(levels, "image", HOUR).state == "frozen"
    assert Calendar(now, ignore_windows=True, lift_freezes=True).verdict(levels, "image", HOUR).open
    later = at(2026, 12, 6, 12)
    assert Calendar(later, ignore_windows=True).verdict(levels, "image", HOUR).open
    assert not Calendar(later).verdict(levels, "image", HOUR).open


def test_a_window_covers_only_what_it_says() -> None:
    image_only = window(schedule="0 22 * * Mon-Fri", duration="4h", covers="image")
    levels = [fleet_level(image_only)]
    calendar = Calendar(at(2026, 12, 5, 12))
    assert calendar.verdict(levels, "image", HOUR).state == "closed"
    assert calendar.verdict(levels, "drift", HOUR).open


def test_no_opening_long_enough_within_the_horizon_is_said() -> None:
    verdict = Calendar(at(2026, 12, 5, 12)).verdict([fleet_level(WEEKNIGHTS)], "image", 5 * HOUR)
    assert verdict.state == "never"
    assert verdict.starts is None
    assert "no opening of 5h within" in verdict.reason


def test_evaluation_is_cached_per_calendar_not_recomputed_per_cluster() -> None:
    calendar = Calendar(at(2026, 12, 5, 12))
    levels = [fleet_level(WEEKNIGHTS)]
    first = calendar.periods(levels, "image")
    assert calendar.periods(levels, "image") is first


def test_a_six_field_schedule_opens_to_the_second_for_demos_and_tests() -> None:
    every = Window.model_validate({"name": "often", "schedule": "*/5 * * * * *", "duration": "2s"})
    start = datetime(2026, 12, 5, 12, 0, 1, tzinfo=UTC).timestamp()
    spans = occurrences(every, start, start + 10)
    # The one that opened at :00 is still open at :01.
    assert [(s.start - start, s.end - start) for s in spans] == [(-1, 1), (4, 6), (9, 11)]


def test_looking_further_only_when_nothing_fits_nearby() -> None:
    monthly = window(schedule="0 22 1 * *", duration="4h")
    calendar = Calendar(at(2026, 12, 5, 12))
    verdict = calendar.verdict([fleet_level(monthly)], "image", HOUR)
    assert verdict.starts == at(2027, 1, 1, 22)  # 27 days ahead: found past the first steps
