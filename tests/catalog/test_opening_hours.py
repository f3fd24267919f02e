"""Opening hours as vendors type them, shown back, and "open now" on the store's own clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog.opening_hours import format_opening_hours, is_open, parse_opening_hours, valid_timezone


def test_weekdays_saturday_and_a_closed_sunday() -> None:
    hours = parse_opening_hours("Mo-Fr 09:00-18:00; Sa 10:00-14:00; Su closed")
    assert hours["mo"] == [["09:00", "18:00"]]
    assert hours["fr"] == [["09:00", "18:00"]]
    assert hours["sa"] == [["10:00", "14:00"]]
    assert hours["su"] == []
    assert format_opening_hours(hours) == "Mo-Fr 09:00-18:00; Sa 10:00-14:00; Su closed"


def test_always_open() -> None:
    hours = parse_opening_hours("24/7")
    assert all(day == [["00:00", "24:00"]] for day in hours.values())
    assert format_opening_hours(hours) == "24/7"
    assert is_open(hours, "Europe/Berlin", datetime(2026, 3, 29, 1, 30, tzinfo=UTC))


def test_several_ranges_a_day_and_english_names() -> None:
    hours = parse_opening_hours("Monday 9:00-12:00,13:00-18:00\nTue, Thu: 08:30-12:00\nsaturday-sunday off")
    assert hours["mo"] == [["09:00", "12:00"], ["13:00", "18:00"]]
    assert hours["tu"] == hours["th"] == [["08:30", "12:00"]]
    assert hours["we"] == [] and hours["sa"] == [] and hours["su"] == []
    assert parse_opening_hours(format_opening_hours(hours)) == hours


def test_later_rules_replace_earlier_ones_and_ranges_wrap() -> None:
    hours = parse_opening_hours("Mo-Su 09:00-18:00; Su closed; Sa-Mo 10:00-11:00")
    assert hours["su"] == [["10:00", "11:00"]] and hours["mo"] == [["10:00", "11:00"]]
    assert hours["tu"] == [["09:00", "18:00"]]


def test_empty_text_means_unknown_and_unknown_is_never_open() -> None:
    assert parse_opening_hours("  ") == {}
    assert format_opening_hours({}) == ""
    assert not is_open({}, "UTC", datetime(2026, 1, 5, 12, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Mo-Fr 9-18", "not a time like 09:00"),
        ("Xy 09:00-18:00", "'Xy' is not a day"),
        ("Mo 25:00-26:00", "not a time of day"),
        ("Mo 09:60-10:00", "not a time of day"),
        ("Mo 09:00-12:00,11:00-13:00", "overlap"),
        ("Mo 09:00-09:00", "same time"),
        ("Mo 09:00", "not a time range"),
        ("09:00-18:00", "expected days then hours"),
        ("Mo-Fr 09:00-18:00; Sa 24:00-10:00", "rule 2"),
    ],
)
def test_mistakes_are_named(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_opening_hours(text)


def test_open_now_on_the_store_clock() -> None:
    hours = parse_opening_hours("Mo-Fr 09:00-18:00; Sa 10:00-14:00; Su closed")
    # Monday 2026-01-05: Berlin is UTC+1 in winter, so 08:30 UTC is 09:30 there.
    assert is_open(hours, "Europe/Berlin", datetime(2026, 1, 5, 8, 30, tzinfo=UTC))
    assert not is_open(hours, "Europe/Berlin", datetime(2026, 1, 5, 7, 30, tzinfo=UTC))
    # The closing minute is closed.
    assert not is_open(hours, "Europe/Berlin", datetime(2026, 1, 5, 17, 0, tzinfo=UTC))
    assert is_open(hours, "Europe/Berlin", datetime(2026, 1, 5, 16, 59, tzinfo=UTC))
    # Summer time: UTC+2, so 07:30 UTC is 09:30 on Monday 2026-07-06.
    assert is_open(hours, "Europe/Berlin", datetime(2026, 7, 6, 7, 30, tzinfo=UTC))
    assert not is_open(hours, "Europe/Berlin", datetime(2026, 7, 6, 16, 30, tzinfo=UTC))
    # Sunday closed.
    assert not is_open(hours, "Europe/Berlin", datetime(2026, 1, 4, 12, 0, tzinfo=UTC))


def test_ranges_past_midnight_count_the_next_morning() -> None:
    hours = parse_opening_hours("Fr 18:00-02:00")
    assert hours["fr"] == [["18:00", "02:00"]]
    friday_late = datetime(2026, 1, 9, 23, 0, tzinfo=UTC)  # Friday
    saturday_early = datetime(2026, 1, 10, 1, 59, tzinfo=UTC)
    saturday_two = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
    thursday_late = datetime(2026, 1, 8, 23, 0, tzinfo=UTC)
    friday_early = datetime(2026, 1, 9, 1, 0, tzinfo=UTC)
    assert is_open(hours, "UTC", friday_late)
    assert is_open(hours, "UTC", saturday_early)
    assert not is_open(hours, "UTC", saturday_two)
    assert not is_open(hours, "UTC", thursday_late)
    assert not is_open(hours, "UTC", friday_early)
    assert format_opening_hours(hours) == "Mo-Th closed; Fr 18:00-02:00; Sa,Su closed"


def test_sunday_night_wraps_to_monday() -> None:
    hours = parse_opening_hours("Su 22:00-03:00")
    assert is_open(hours, "UTC", datetime(2026, 1, 5, 2, 0, tzinfo=UTC))  # Monday 02:00


def test_bad_inputs_to_is_open() -> None:
    hours = parse_opening_hours("24/7")
    with pytest.raises(ValueError, match="aware"):
        is_open(hours, "UTC", datetime(2026, 1, 5, 12))
    with pytest.raises(ValueError, match="IANA"):
        is_open(hours, "Mars/Olympus", datetime(2026, 1, 5, 12, tzinfo=UTC))
    assert valid_timezone("Europe/Paris") and not valid_timezone("Mars/Olympus") and not valid_timezone("")


def test_a_field_of_spaces_is_refused_at_once_and_spaces_never_matter() -> None:
    # Before the runs of spaces were made one, this rule took the regex about 70 s of CPU.
    with pytest.raises(ValueError, match="expected days then hours"):
        parse_opening_hours("Mo" + " " * 1999 + "x")
    assert parse_opening_hours("Mo-Fr \t 09:00-18:00 ;  Su   closed") == parse_opening_hours(
        "Mo-Fr 09:00-18:00; Su closed"
    )
