"""The window-counter throttles (registry/api/throttling.py): limits, waits, races."""

import socket
import threading
import uuid
from types import SimpleNamespace

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from registry.api.throttling import UserRateThrottle

PERIOD = 60.0
START = 1_000_000 * PERIOD  # the start of a window


def a_user(pk: int = 7) -> SimpleNamespace:
    return SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=pk), META={})


def throttle_factory(rate: str, cache, clock: list[float]):
    class Throttle(UserRateThrottle):
        pass

    Throttle.rate = rate
    Throttle.cache = cache
    Throttle.timer = staticmethod(lambda: clock[0])
    return Throttle


def attempts(throttle_class, n: int, user=None) -> list[bool]:
    user = user or a_user()
    return [throttle_class().allow_request(user, None) for _ in range(n)]


def assert_refused_for(throttle_class, clock: list[float], seconds: float) -> None:
    """Refused now with wait() == seconds; still refused just before; one admitted then."""
    refused = throttle_class()
    assert not refused.allow_request(a_user(), None)
    assert refused.wait() == pytest.approx(seconds)
    clock[0] += seconds - 0.1
    assert attempts(throttle_class, 1) == [False]
    clock[0] += 0.1
    assert attempts(throttle_class, 2) == [True, False]


@pytest.fixture
def cache():
    return LocMemCache(f"throttle-{uuid.uuid4().hex}", {})


def test_a_fresh_window_admits_the_limit_and_refuses_the_next(cache):
    clock = [START + 1]
    throttle = throttle_factory("3/minute", cache, clock)

    assert attempts(throttle, 5) == [True, True, True, False, False]
    # refused requests are not counted: one integer, at the limit
    (counter,) = [key for key in cache._cache if ":1000000" in key]
    assert cache.get(counter.split(":", 2)[2]) == 3


def test_the_previous_window_weighs_by_how_much_of_it_the_sliding_window_covers(cache):
    clock = [START]
    throttle = throttle_factory("10/minute", cache, clock)
    assert all(attempts(throttle, 10))

    # half-way through the next window the previous one counts half: five more
    clock[0] = START + PERIOD * 1.5
    assert attempts(throttle, 6) == [True] * 5 + [False]

    # previous * (1 - f) + 5 + 1 <= 10 from f = 0.6 on, 6 s later
    assert_refused_for(throttle, clock, seconds=6.0)


def test_a_full_window_waits_into_the_next_until_its_weight_leaves_room(cache):
    clock = [START]
    throttle = throttle_factory("2/minute", cache, clock)
    assert attempts(throttle, 2) == [True, True]

    # in the next window the two count 2 * (1 - g); one more fits from g = 0.5 on
    assert_refused_for(throttle, clock, seconds=90.0)


def test_windows_two_periods_back_are_forgotten_and_users_are_apart(cache):
    clock = [START]
    throttle = throttle_factory("2/minute", cache, clock)
    assert attempts(throttle, 3) == [True, True, False]
    assert attempts(throttle, 2, user=a_user(8)) == [True, True], "per user"

    clock[0] += 2 * PERIOD
    assert attempts(throttle, 3) == [True, True, False]


def test_what_a_request_costs_does_not_grow_with_the_rate(cache):
    clock = [START]
    throttle = throttle_factory("100000/minute", cache, clock)
    assert all(attempts(throttle, 2000))
    clock[0] += PERIOD
    assert all(attempts(throttle, 1000))

    # two windows' counters, each one small integer (DRF's log would hold 3,000 floats)
    values = [cache.get(key.split(":", 2)[2]) for key in cache._cache]
    assert sorted(values) == [1000, 2000]


def _race(throttle_class, threads: int, each: int) -> int:
    admitted = []
    barrier = threading.Barrier(threads)

    def hammer() -> None:
        barrier.wait()
        admitted.append(sum(attempts(throttle_class, each)))

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted)


def test_concurrent_requests_admit_exactly_the_limit(cache):
    throttle = throttle_factory("100/minute", cache, [START + 1])
    assert _race(throttle, threads=8, each=40) == 100


def redis_cache() -> RedisCache | None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return None
    return RedisCache("redis://127.0.0.1:6379/12", {"KEY_PREFIX": f"throttle-{uuid.uuid4().hex}"})


def test_concurrent_requests_admit_exactly_the_limit_through_redis():
    cache = redis_cache()
    if cache is None:
        pytest.skip("needs Redis on 127.0.0.1:6379, the production cache")
    try:
        throttle = throttle_factory("100/minute", cache, [START + 1])
        assert _race(throttle, threads=8, each=40) == 100
        assert attempts(throttle, 1) == [False]
        # the counter lives two periods: through its window, then as the next one's previous
        key = cache.make_and_validate_key(f"throttle_user_7:{int(START // PERIOD)}")
        client = cache._cache.get_client(key)
        assert int(client.get(key)) == 100 and 0 < client.ttl(key) <= 2 * PERIOD
    finally:  # this test's counters only (its own key prefix), not the whole database
        window = int(START // PERIOD)
        cache.delete_many([f"throttle_user_7:{window}", f"throttle_user_7:{window - 1}"])
