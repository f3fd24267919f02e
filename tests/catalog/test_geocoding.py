"""Offline geocoding: postcodes and towns of the demo country, "lat,lon", and clear refusals."""

from __future__ import annotations

import pytest

from catalog.geocoding import UnknownPlace, city, locate, parse_near
from catalog.nearby import haversine_km


def _km(a, b) -> float:  # type: ignore[no-untyped-def]
    import numpy as np

    return float(haversine_km(a.lat, a.lon, np.array([b.lat]), np.array([b.lon]))[0])


@pytest.mark.parametrize(
    ("typed", "near", "label"),
    [
        ("Paris", (48.8566, 2.3522), "Paris"),
        ("  lyon ", (45.7640, 4.8357), "Lyon"),
        ("saint etienne", (45.4397, 4.3872), "Saint-Étienne"),
        ("St-Étienne", (45.4397, 4.3872), "Saint-Étienne"),
        ("75011", (48.8566, 2.3522), "75011 (Paris)"),
        ("69003", (45.7640, 4.8357), "69003 (Lyon)"),
        ("13 001", (43.2965, 5.3698), "13001 (Marseille)"),
        ("69003 Lyon", (45.7640, 4.8357), "Lyon"),
        ("48.8566, 2.3522", (48.8566, 2.3522), "48.85660,2.35220"),
    ],
)
def test_places_people_type(typed: str, near: tuple[float, float], label: str) -> None:
    found = locate(typed)
    assert found.label == label
    assert _km(found, parse_near(f"{near[0]},{near[1]}")) < 5


@pytest.mark.parametrize(
    ("typed", "country", "message"),
    [
        ("Atlantis", None, "no town called 'Atlantis'"),
        ("", None, "type a postcode or a town"),
        ("48000", None, "département is not in our postcode table"),
        ("Berlin", "DE", "cannot be looked up offline"),
        ("91,0", None, "latitude"),
    ],
)
def test_unknown_places_are_refused_by_name(typed: str, country: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        locate(typed, country)
    if message != "latitude":
        with pytest.raises(UnknownPlace):
            locate(typed, country)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("48.8", "lat,lon"),
        ("a,b", "lat,lon"),
        ("91,2", "latitude 91.0"),
        ("45,-181", "longitude -181.0"),
        ("", "lat,lon"),
    ],
)
def test_parse_near_checks_ranges(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_near(text)


def test_the_bigger_town_wins_a_shared_name_and_has_a_time_zone() -> None:
    assert city("PARIS").population > 2_000_000
    assert city("Nice").timezone == "Europe/Paris"
    assert locate("Marseille", country="fr").label == "Marseille"
