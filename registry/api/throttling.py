"""Rate limits that cost the same at any rate: two counters a client, not a log.

DRF's throttles keep every admitted request's time in one cached list per client and
read, trim and write the whole list back on every request. At the default user limit
(6,000 a minute) a busy client's list holds 6,000 floats: 0.3-0.4 ms of pickling a
request in-process, and two transfers of ~50 KB each through Redis in production
(benchmarks/README.md, "API rate limits"). These throttles keep one counter per client
and fixed window of the rate's period instead, and estimate the sliding window from the
current and the previous counter (the previous one weighted by how much of it the
sliding window still covers, as if its requests had come evenly). A request costs one
round trip to Redis (INCR, EXPIRE and GET in a pipeline) whatever the rate, and the
counters change only by atomic operations, so concurrent requests cannot slip past the
limit through lost updates, as the read-modify-write of a list lets them.

Where the previous window's requests were not evenly spread the estimate errs either
way (a burst at its start still weighs, one at its end weighs less), but no fixed
window ever admits more than the limit; in steady traffic it matches the sliding log.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from rest_framework import throttling


class WindowCounterThrottle(throttling.SimpleRateThrottle):
    """`SimpleRateThrottle`'s rates, scopes and keys, counted in two fixed windows."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = math.floor(self.now / self.duration)
        current, previous = f"{self.key}:{window}", f"{self.key}:{window - 1}"
        self._elapsed = self.now / self.duration - window  # of the current window, 0 to 1
        counters = _RedisCounters if isinstance(self.cache, RedisCache) else _CacheCounters
        self._previous, self._current = counters.count(
            self.cache, current, previous, lifetime=2 * self.duration
        )
        weight = self._previous * (1 - self._elapsed)
        if weight + self._current <= self.num_requests + 1e-9:  # admitted when wait() said
            return True
        self._current -= 1  # a refused request is not counted
        counters.take_back(self.cache, current)
        return False

    def wait(self) -> float:
        """Seconds until a request would be admitted, if none comes meanwhile.

        A request at fraction f of a window is admitted when
        previous * (1 - f) + admitted + 1 <= limit."""
        room = self.num_requests - self._current - 1  # what the previous window may weigh
        if room >= 0 and self._previous:  # later in this window, as its weight fades
            return max(1 - room / self._previous - self._elapsed, 0.0) * self.duration
        if self.num_requests < 1:
            return float(self.duration)
        # this window is full: into the next one, where it is the previous
        fading = max(1 - (self.num_requests - 1) / self._current, 0.0) if self._current else 0.0
        return (1 - self._elapsed + fading) * self.duration


# DRF's classes first: they pick the scope, rate and key (the scoped one in its own
# allow_request), then hand over to the window counters.
class AnonRateThrottle(throttling.AnonRateThrottle, WindowCounterThrottle):
    """Anonymous requests, per client address (`anon` rate)."""


class UserRateThrottle(throttling.UserRateThrottle, WindowCounterThrottle):
    """Authenticated requests, per user (`user` rate)."""


class ScopedRateThrottle(throttling.ScopedRateThrottle, WindowCounterThrottle):
    """Per view `throttle_scope` (`login`, `ledger`), per user or client address."""


# The counters outlive their window by one period: each is the next window's `previous`.


class _CacheCounters:
    """Through Django's cache API: any backend (the per-process memory cache, in tests
    and `make run`). `add` and `incr` are atomic in each."""

    @staticmethod
    def count(cache: BaseCache, current: str, previous: str, lifetime: int) -> tuple[int, int]:
        """(the previous window's count, the current one's with this request added)."""
        before = cache.get(previous, 0)
        if cache.add(current, 1, lifetime):
            return before, 1
        try:
            return before, cache.incr(current)
        except ValueError:  # expired between add and incr
            cache.add(current, 0, lifetime)
            return before, cache.incr(current)

    @staticmethod
    def take_back(cache: BaseCache, current: str) -> None:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to take back
            cache.decr(current)


class _RedisCounters:
    """Redis (production's CACHE_URL): INCR, EXPIRE and GET in one round trip, where
    Django's API takes four (its `incr` checks that the key exists first). The keys are
    made as Django's own methods make them; the client is its `RedisCache._cache`
    (private, unchanged since Django 4.0: tests/registry/test_throttling.py uses it too,
    so an upgrade that moves it fails there)."""

    @staticmethod
    def count(cache: RedisCache, current: str, previous: str, lifetime: int) -> tuple[int, int]:
        key = cache.make_and_validate_key(current)
        pipe = cache._cache.get_client(key, write=True).pipeline(transaction=False)
        pipe.incr(key).expire(key, lifetime).get(cache.make_and_validate_key(previous))
        count, _expiry, before = pipe.execute()
        return int(before or 0), count

    @staticmethod
    def take_back(cache: RedisCache, current: str) -> None:
        key = cache.make_and_validate_key(current)
        cache._cache.get_client(key, write=True).decr(key)
