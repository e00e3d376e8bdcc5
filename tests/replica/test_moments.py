"""The moments people type for point-in-time restores and reads (django_litestream.when)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from django_litestream.replica import moments

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-15m", NOW - timedelta(minutes=15)),
        ("-2h", NOW - timedelta(hours=2)),
        ("-1d", NOW - timedelta(days=1)),
        ("-90s", NOW - timedelta(seconds=90)),
        ("-1w", NOW - timedelta(weeks=1)),
        ("- 1.5h", NOW - timedelta(minutes=90)),
        ("15 minutes ago", NOW - timedelta(minutes=15)),
        ("1 hour ago", NOW - timedelta(hours=1)),
        ("an hour ago", NOW - timedelta(hours=1)),
        ("2 Days  ago", NOW - timedelta(days=2)),
        ("now", NOW),
        ("2026-11-25T10:00:00Z", datetime(2026, 11, 25, 10, tzinfo=timezone.utc)),
        ("2026-11-25T10:00:00+01:00", datetime(2026, 11, 25, 9, tzinfo=timezone.utc)),
        ("2026-11-25t10:00z", datetime(2026, 11, 25, 10, tzinfo=timezone.utc)),
    ],
)
def test_relative_and_zoned_forms(text: str, expected: datetime) -> None:
    moment = moments.parse(text, now=NOW, zone=BERLIN)
    assert moment.at == expected
    assert moment.at.tzinfo == timezone.utc


@pytest.mark.parametrize(
    ("text", "utc_hour"),
    [
        ("2026-11-25 10:00", 9),  # CET, UTC+1 in November
        ("2026-11-25T10:00:00", 9),
        ("2026-07-01 10:00", 8),  # CEST, UTC+2 in July: the zone's own rules apply
    ],
)
def test_times_without_a_zone_are_local_and_say_which_zone(text: str, utc_hour: int) -> None:
    moment = moments.parse(text, now=NOW, zone=BERLIN)
    assert moment.at.hour == utc_hour
    assert "local time" in moment.description
    assert "UTC+0" in moment.description


def test_a_date_alone_is_local_midnight() -> None:
    moment = moments.parse("2026-11-25", now=NOW, zone=BERLIN)
    assert moment.at == datetime(2026, 11, 24, 23, tzinfo=timezone.utc)


def test_datetime_objects_naive_and_aware() -> None:
    aware = datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
    assert moments.parse(aware).at == aware
    naive = moments.parse(datetime(2026, 11, 25, 10), zone=BERLIN)
    assert naive.at == datetime(2026, 11, 25, 9, tzinfo=timezone.utc)


def test_without_a_zone_argument_the_machines_local_time_is_used() -> None:
    local = datetime(2026, 11, 25, 10).astimezone()
    assert moments.parse("2026-11-25 10:00").at == local.astimezone(timezone.utc)


def test_rfc3339_is_what_litestream_reads() -> None:
    assert moments.parse("2026-11-25T10:00:00Z").rfc3339 == "2026-11-25T10:00:00Z"
    assert moments.parse("2026-11-25T10:00:00.25Z").rfc3339 == "2026-11-25T10:00:00.250000Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday-ish", "Cannot read 'yesterday-ish' as a time"),
        ("", "No time given"),
        ("-5 fortnights", "Unknown unit 'fortnights'"),
        ("5 parsecs ago", "Unknown unit 'parsecs'"),
        ("1e300 days ago", "Cannot read"),
        ("99999999999 weeks ago", "too far in the past"),
        ("2026-13-01", "Cannot read"),
    ],
)
def test_bad_input_names_the_accepted_forms(text: str, message: str) -> None:
    with pytest.raises(moments.WhenError) as info:
        moments.parse(text, now=NOW)
    assert message in str(info.value)
    if "Cannot read" in message or "No time" in message:
        assert "'-15m'" in str(info.value) and "ISO 8601" in str(info.value)
