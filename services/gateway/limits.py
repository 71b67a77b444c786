"""Rate limits at the edge: tenancy's rules, counted in this replica's memory.

The rules come with the verified key (`VerifiedKey.rate_limits`: the org's window, its `key` and
`operation` rules), so they are cached with the key and cost no request of their own. Counting
is local, in fixed windows aligned to the clock: asking tenancy (`tenancy.rate_limit.hit`, a
database write) on every request would double the cost of the cheapest route. Each of
`gateway_replicas` replicas allows its share of a rule (rounded up), so N replicas behind a
balancer that spreads the load allow about the rule's calls in all.

A call takes one unit from every window that applies, or from none (a refused call costs no
window anything), as tenancy's own `hit` does; the answer is the tightest window, for the
`RateLimit-*` headers.
"""

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from uuid import UUID

from shared.contracts.tenancy import RateLimitRule
from shared.kernel.errors import RateLimited

_PRUNE_EVERY = 4096
"""Calls between sweeps of the windows that have ended (a replica sees a bounded set of orgs and keys)."""


@dataclass(frozen=True, slots=True)
class Allowance:
    """The tightest window a call was counted in: what the `RateLimit-*` headers say."""

    limit: int
    remaining: int
    reset: float  # seconds until that window ends
    window: int
    scope: str

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(max(1, math.ceil(self.reset))).encode()),
            (b"ratelimit-policy", f"{self.limit};w={self.window}".encode()),
        ]

    def refusal(self) -> RateLimited:
        return RateLimited(
            f"too many calls ({self.scope} limit {self.limit} per {self.window}s); retry in {self.reset:.1f}s",
            {"retry_after": round(self.reset, 3), "scope": self.scope, "limit": self.limit, "window_seconds": self.window},
        )


class RateLimiter:
    """Fixed windows per (org, bucket): `take` counts a call in every window of its rules, or refuses."""

    def __init__(self, replicas: int = 1) -> None:
        self.replicas = replicas
        self._windows: dict[tuple[UUID, str, int], list[float | int]] = {}  # -> [end, calls]
        self._since_prune = 0

    def take_request(self, org_id: UUID, key_id: str, rules: Iterable[RateLimitRule]) -> Allowance | None:
        """Every authenticated request: the org's window and the key's."""
        buckets = [(r, "org" if r.scope == "org" else f"key:{key_id}") for r in rules if r.scope in ("org", "key")]
        return self._take(org_id, buckets)

    def take_operation(self, org_id: UUID, operation: str, rules: Iterable[RateLimitRule]) -> Allowance | None:
        """A request's bus operation (`things.create`): the org's operation rules that match it."""
        buckets = [(r, f"op:{r.operation}") for r in rules if r.scope == "operation" and fnmatchcase(operation, r.operation)]
        return self._take(org_id, buckets)

    def _take(self, org_id: UUID, buckets: list[tuple[RateLimitRule, str]]) -> Allowance | None:
        if not buckets:
            return None
        now = time.time()
        counted: list[tuple[list[float | int], Allowance]] = []
        tightest: Allowance | None = None
        for rule, bucket in buckets:
            window = self._window(org_id, bucket, rule.window_seconds, now)
            limit = -(-rule.max_calls // self.replicas)
            allowance = Allowance(limit, limit - int(window[1]) - 1, window[0] - now, rule.window_seconds, rule.scope)
            if allowance.remaining < 0:
                raise Refused(Allowance(limit, 0, allowance.reset, rule.window_seconds, rule.scope))
            counted.append((window, allowance))
            if tightest is None or allowance.remaining < tightest.remaining:
                tightest = allowance
        for window, _ in counted:
            window[1] += 1
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self._prune(now)
        return tightest

    def _window(self, org_id: UUID, bucket: str, seconds: int, now: float) -> list[float | int]:
        key = (org_id, bucket, seconds)
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            window = self._windows[key] = [(now // seconds + 1) * seconds, 0]
        return window

    def _prune(self, now: float) -> None:
        self._since_prune = 0
        for key in [k for k, (end, _) in self._windows.items() if end <= now]:
            del self._windows[key]


class Refused(RateLimited):
    """`rate_limited`, carrying the window that refused (for the headers of the 429)."""

    def __init__(self, allowance: Allowance) -> None:
        refusal = allowance.refusal()
        super().__init__(refusal.message, refusal.details)
        self.allowance = allowance
