"""The load generator of `vitrine bench serve`: N concurrent clients posting photos, bounded in count and time.

Runs as its own process (`python -m benchmarks.load ...`) so that the client's work never shares an
interpreter (or a GIL) with the server it measures. Prints one JSON object: counts, errors (with a
few samples), the wall time and per-request latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import numpy as np


async def run_load(
    url: str, photos: list[bytes], clients: int, requests: int, duration_s: float, warmup: int = 0, k: int = 24
) -> dict:
    """`requests` searches by `clients` concurrent clients, each waiting for its answer before the next;
    no new request starts after `duration_s`. `warmup` requests go first and are not counted."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(number: int) -> tuple[float, str | None]:
            photo = photos[number % len(photos)]
            began = time.perf_counter()
            try:
                response = await client.post(
                    "/api/search", files={"photo": (f"photo{number}.jpg", photo, "image/jpeg")}, data={"k": str(k)}
                )
                problem = None if response.status_code == 200 else f"HTTP {response.status_code}: {response.text[:200]}"
                if problem is None and not response.json().get("results"):
                    problem = "no results"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            return (time.perf_counter() - began) * 1000, problem

        for batch_start in range(0, warmup, clients):
            await asyncio.gather(*(one(i) for i in range(batch_start, min(warmup, batch_start + clients))))

        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal issued
            while issued < requests and time.perf_counter() < deadline:
                number = issued
                issued += 1
                latency, problem = await one(number)
                if problem is None:
                    latencies.append(latency)
                else:
                    errors.append(problem)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - began

    done = len(latencies) + len(errors)
    values = np.asarray(latencies) if latencies else np.asarray([np.nan])
    return {
        "clients": clients,
        "requests": done,
        "errors": len(errors),
        "error_samples": errors[:5],
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p90_ms": round(float(np.percentile(values, 90)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
        "mean_ms": round(float(values.mean()), 1),
        "timed_out": done < requests,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--photos", type=Path, required=True, help="folder of JPEG files to post, in name order")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True, help="seconds after which no request starts")
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args(argv)
    photos = [path.read_bytes() for path in sorted(args.photos.glob("*.jpg"))]
    if not photos:
        sys.exit(f"no .jpg files in {args.photos}")
    result = asyncio.run(run_load(args.url, photos, args.clients, args.requests, args.duration, args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
