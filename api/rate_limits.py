"""Per-client rate limits, one budget per kind of action, on Litestar's `RateLimitMiddleware`.

Each rule names the POST routes it counts (by path, so routes other packages add later are covered
once they exist) and a budget per client address: sign-in the tightest (each try costs an Argon2
hash; wrong ones also count toward the per-account and per-address lockouts kept in the database,
`workflow.sign_in_throttle`), search the most generous. Over budget
is a 429 with `Retry-After` and the `RateLimit-*` headers. `Settings.rate_limits`
(`VITRINE_RATE_LIMITS`) changes a rule (`sign_in=5/minute`), turns one off (`search=off`) or all of
them (`off`).

The counts live in the app's memory store: one budget per process. That is the right place for a
cheap per-request counter (no database write per search); with several processes the budget is
per process, which the per-account sign-in lockout (`workflow.sign_in_throttle`, in the database)
does not depend on. The client is the connection's address: behind a proxy, run uvicorn with
`--forwarded-allow-ips` so that address is the real client's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from time import time
from typing import Any, Literal, cast

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    CacheObject,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)

Unit = Literal["second", "minute", "hour", "day"]


@dataclass(frozen=True)
class Rule:
    """A budget of `count` requests per `unit` per client for the POST routes matching `paths`."""

    name: str
    paths: str
    count: int
    unit: Unit = "minute"
    what: str = "requests"

    def matches(self, request: Request) -> bool:
        return request.method == "POST" and re.fullmatch(self.paths, request.url.path) is not None


# Generous enough for people (and the test suite, which posts quickly from one address); tight
# enough that one client cannot flood the queue, the mail or the sign-in form.
RULES = (
    Rule("sign_in", r"/login|/api/staff/token/?", 60, what="sign-in attempts"),  # each costs an Argon2 hash
    Rule("requests", r"/requests|/api/requests/?", 120, what="new requests"),
    Rule("search", r"/api/search/?", 600, what="searches"),
    Rule(
        "messages",
        r"/r/[^/]+/messages|/operator/requests/\d+/messages|/api/staff/requests/\d+/messages",
        120,
        what="messages",
    ),
    Rule("waitlist", r"/waitlist|/api/waitlist/?", 30, what="waitlist sign-ups"),
    Rule(
        "applications", r"/apply/(?:operator|vendor)|/api/applications/(?:operator|vendor)/?", 30, what="applications"
    ),
    # Each may send an e-mail (at most 3 an hour per address, workflow.request_finder): few per client too.
    Rule("find_requests", r"/my-requests", 10, what="look-ups of earlier requests"),
)


def configured_rules(overrides: str) -> list[Rule]:
    """`RULES` with `overrides` applied: "off", or comma-separated `name=COUNT/UNIT` or `name=off`."""
    text = overrides.strip().lower()
    if text in ("off", "0", "none"):
        return []
    rules = {rule.name: rule for rule in RULES}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, budget = item.partition("=")
        name = name.strip()
        if name not in rules:
            raise ValueError(f"VITRINE_RATE_LIMITS: no rule {name!r} (rules: {', '.join(r.name for r in RULES)})")
        if budget.strip() == "off":
            del rules[name]
            continue
        count, _, unit = budget.strip().partition("/")
        if not count.isdigit() or int(count) < 1 or unit not in DURATION_VALUES:
            raise ValueError(f"VITRINE_RATE_LIMITS: {item!r} is not NAME=COUNT/UNIT (unit: second, minute, hour, day)")
        rule = rules[name]
        rules[name] = Rule(rule.name, rule.paths, int(count), cast(Unit, unit), rule.what)
    return list(rules.values())


class _RuleLimiter(RateLimitMiddleware):
    """Litestar's limiter, refusing with a sentence that names the action and when to come back."""

    rule: Rule

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as exc:
            if exc.detail != "Too Many Requests" or exc.headers is None:
                raise
            wait = max(1, int(exc.headers.get(self.config.rate_limit_reset_header_key, "1")))
            raise TooManyRequestsException(
                detail=(
                    f"Too many {self.rule.what} from your address ({self.max_requests} per {self.unit}). "
                    f"Try again in {wait} seconds."
                ),
                headers={**exc.headers, "Retry-After": str(wait)},
            ) from None

    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        headers = super().create_response_headers(cache_object)
        headers[self.config.rate_limit_reset_header_key] = str(max(0, cache_object.reset - int(time())))
        return headers


def rate_limit_middleware(overrides: str) -> list[DefineMiddleware]:
    """One Litestar rate-limit middleware per rule, each counting only its own routes."""
    middleware = []
    for rule in configured_rules(overrides):
        limiter = type(f"RateLimit_{rule.name}", (_RuleLimiter,), {"rule": rule})
        config = RateLimitConfig(
            rate_limit=(rule.unit, rule.count),
            check_throttle_handler=rule.matches,
            identifier_for_request=lambda request, name=rule.name: f"{name}:{get_remote_address(request)}",
            middleware_class=limiter,
        )
        middleware.append(config.middleware)
    return middleware
