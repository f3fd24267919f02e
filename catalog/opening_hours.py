"""A store's weekly opening hours: parsed from what a vendor types, shown back, and asked "open now?".

Vendors write hours the way shop doors and OpenStreetMap do ("Mo-Fr 09:00-18:00; Sa 10:00-14:00;
Su closed"), so that is what we read; what we keep (`Store.opening_hours`, JSON) is the plain
weekly table `{"mo": [["09:00", "18:00"]], ..., "su": []}` so readers (nearby search, the pages)
need no parser. A range whose end is not after its start runs past midnight ("Fr 18:00-02:00"
means Friday evening into Saturday night); "24:00" is allowed as an end. An empty dict means the
vendor gave no hours: such a store is never reported open, because "open now" must not be a guess.

Rules are separated by ";" or new lines; a later rule replaces the hours of the days it names, so
"Mo-Su 09:00-18:00; Su closed" reads as one expects."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS: tuple[str, ...] = ("mo", "tu", "we", "th", "fr", "sa", "su")

_DAY_NAMES: dict[str, str] = {}
for _key, _names in zip(
    DAYS,
    (
        ("mo", "mon", "monday"),
        ("tu", "tue", "tues", "tuesday"),
        ("we", "wed", "wednesday"),
        ("th", "thu", "thur", "thurs", "thursday"),
        ("fr", "fri", "friday"),
        ("sa", "sat", "saturday"),
        ("su", "sun", "sunday"),
    ),
    strict=True,
):
    for _name in _names:
        _DAY_NAMES[_name] = _key

_CLOSED = {"closed", "off"}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_RULE = re.compile(r"^(?P<days>[a-z][^0-9]*?)\s*:?\s*(?P<times>\d.*|closed|off)$", re.IGNORECASE)
_ALWAYS = [["00:00", "24:00"]]


def _minutes(text: str, *, is_end: bool, where: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"{where}: {text.strip()!r} is not a time like 09:00")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not is_end)):
        raise ValueError(f"{where}: {text.strip()!r} is not a time of day (00:00 to 23:59, or 24:00 as an end)")
    return hours * 60 + minutes


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day(name: str, where: str) -> int:
    key = _DAY_NAMES.get(name.strip().lower())
    if key is None:
        raise ValueError(f"{where}: {name.strip()!r} is not a day (use Mo, Tu, We, Th, Fr, Sa, Su or English names)")
    return DAYS.index(key)


def _days(text: str, where: str) -> list[int]:
    if text.strip().lower() in {"daily", "every day", "everyday"}:
        return list(range(7))
    days: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"{where}: empty day in {text.strip()!r}")
        if "-" in part:
            first, _, last = part.partition("-")
            start, end = _day(first, where), _day(last, where)
            span = (end - start) % 7  # "Sa-Mo" wraps over the weekend
            days.extend((start + step) % 7 for step in range(span + 1))
        else:
            days.append(_day(part, where))
    return days


def _ranges(text: str, where: str) -> list[list[str]]:
    if text.strip().lower() in _CLOSED:
        return []
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        start_text, dash, end_text = part.strip().partition("-")
        if not dash:
            raise ValueError(f"{where}: {part.strip()!r} is not a time range like 09:00-18:00")
        start = _minutes(start_text, is_end=False, where=where)
        end = _minutes(end_text, is_end=True, where=where)
        if start == end or (end == 0 and start == 0):
            raise ValueError(f"{where}: {part.strip()!r} opens and closes at the same time")
        spans.append((start, end))
    spans.sort()
    for (start_a, end_a), (start_b, _) in pairwise(spans):
        if end_a <= start_a or start_b < end_a:  # only the last range of a day may run past midnight
            raise ValueError(f"{where}: the ranges in {text.strip()!r} overlap")
    return [[_clock(start), _clock(end)] for start, end in spans]


def parse_opening_hours(text: str) -> dict[str, list[list[str]]]:
    """The weekly table for `text`; every day present, `[]` when closed. Empty text gives `{}`
    (hours not known). A ValueError says which rule is wrong and why."""
    text = text.strip().replace("\u2013", "-").replace("\u2014", "-")
    if not text:
        return {}
    hours: dict[str, list[list[str]]] = {day: [] for day in DAYS}
    # Runs of spaces made one first: the rule pattern's optional spaces around ':' would otherwise
    # try every split of a long run (seconds of CPU for a field of spaces, the whole process stalled).
    rules = [re.sub(r"\s+", " ", rule.strip()) for rule in re.split(r"[;\n]", text) if rule.strip()]
    for number, rule in enumerate(rules, start=1):
        where = f"rule {number} ({rule!r})"
        if rule.lower() in {"24/7", "24x7", "always open"}:
            for day in DAYS:
                hours[day] = [list(span) for span in _ALWAYS]
            continue
        match = _RULE.match(rule)
        if not match:
            raise ValueError(f"{where}: expected days then hours, like 'Mo-Fr 09:00-18:00' or 'Su closed'")
        ranges = _ranges(match.group("times"), where)
        for day in _days(match.group("days"), where):
            hours[DAYS[day]] = [list(span) for span in ranges]
    return hours


def _check(hours: dict) -> None:
    unknown = set(hours) - set(DAYS)
    if unknown:
        raise ValueError(f"unknown day keys in opening hours: {sorted(unknown)}")


def format_opening_hours(hours: dict) -> str:
    """The table as a vendor would write it, consecutive days with the same hours joined
    ("Mo-Fr 09:00-18:00; Sa 10:00-14:00; Su closed"); "24/7" when always open; "" when unknown.
    Parsing the result gives the same table back."""
    if not hours:
        return ""
    _check(hours)
    table = [[list(span) for span in hours.get(day, [])] for day in DAYS]
    if all(day == _ALWAYS for day in table):
        return "24/7"
    parts: list[str] = []
    start = 0
    while start < 7:
        end = start
        while end + 1 < 7 and table[end + 1] == table[start]:
            end += 1
        days = DAYS[start].capitalize()
        if end > start:
            joiner = "," if end == start + 1 else "-"
            days = f"{days}{joiner}{DAYS[end].capitalize()}"
        times = ",".join(f"{a}-{b}" for a, b in table[start]) or "closed"
        parts.append(f"{days} {times}")
        start = end + 1
    return "; ".join(parts)


def is_open(hours: dict, timezone: str, at: datetime) -> bool:
    """Whether the store is open at the aware instant `at`, read on the store's wall clock
    (`timezone`, an IANA name), so it holds across daylight-saving changes. Ranges past midnight
    count on the next morning too. Unknown hours (`{}`) are never open."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("is_open needs an aware datetime (UTC), not a naive one")
    if not hours:
        return False
    _check(hours)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{timezone!r} is not an IANA time zone name") from exc
    local = at.astimezone(zone)
    now = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local - timedelta(days=1)).weekday()]
    for start_text, end_text in hours.get(today, []):
        start = _minutes(start_text, is_end=False, where=today)
        end = _minutes(end_text, is_end=True, where=today)
        if (start < end and start <= now < end) or (end <= start and now >= start):
            return True
    for start_text, end_text in hours.get(yesterday, []):
        start = _minutes(start_text, is_end=False, where=yesterday)
        end = _minutes(end_text, is_end=True, where=yesterday)
        if end <= start and now < end:
            return True
    return False


def valid_timezone(name: str) -> bool:
    """Whether `name` is an IANA time zone this machine knows (a store's clock for `is_open`)."""
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
