"""CoverageCache: hits, TTL expiry, invalidation, disabling, bounds and thread safety."""

from __future__ import annotations

import threading

import pytest

from ghtrader_assets.stores.cache import CoverageCache


class FakeClock:
    """A monotonic clock the test moves by hand, so TTL tests need not sleep."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_put_then_get_returns_value_and_counts_hits_and_misses() -> None:
    cache = CoverageCache(ttl_seconds=30.0, enabled=True)
    assert cache.get("a") is None
    cache.put("a", [1, 2])
    assert cache.get("a") == [1, 2]
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = CoverageCache(ttl_seconds=10.0, enabled=True, clock=clock)
    cache.put("k", "v")
    clock.now += 9.9
    assert cache.get("k") == "v"
    clock.now += 0.1
    assert cache.get("k") is None
    assert len(cache) == 0  # the expired entry is dropped, not kept around


def test_ttl_none_never_expires_and_zero_ttl_never_hits() -> None:
    clock = FakeClock()
    forever = CoverageCache(ttl_seconds=None, enabled=True, clock=clock)
    forever.put("k", 1)
    clock.now += 1e9
    assert forever.get("k") == 1

    instant = CoverageCache(ttl_seconds=0.0, enabled=True, clock=clock)
    instant.put("k", 1)
    assert instant.get("k") is None


def test_invalidate_drops_everything() -> None:
    cache = CoverageCache(ttl_seconds=None, enabled=True)
    cache.put(("coverage", ("a",)), 1)
    cache.put(("latest", ("a",)), 2)
    cache.invalidate()
    assert cache.get(("coverage", ("a",))) is None
    assert cache.get(("latest", ("a",))) is None
    assert len(cache) == 0


def test_disabled_cache_stores_nothing() -> None:
    cache = CoverageCache(ttl_seconds=30.0, enabled=False)
    cache.put("k", 1)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_size_bound_evicts_least_recently_used() -> None:
    cache = CoverageCache(ttl_seconds=None, enabled=True, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1
    assert cache.get("c") == 3


def test_none_value_is_not_cached() -> None:
    cache = CoverageCache(ttl_seconds=None, enabled=True)
    cache.put("k", None)
    assert len(cache) == 0


@pytest.mark.parametrize("kwargs", [{"ttl_seconds": float("nan")}, {"max_entries": 0}])
def test_bad_arguments_are_rejected(kwargs: dict) -> None:
    args = {"ttl_seconds": 1.0, "enabled": True, **kwargs}
    with pytest.raises(ValueError, match="CoverageCache"):
        CoverageCache(**args)


def test_concurrent_use_from_threads_keeps_the_cache_consistent() -> None:
    cache = CoverageCache(ttl_seconds=None, enabled=True, max_entries=50)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(2000):
                key = (n, i % 60)
                cache.put(key, i)
                got = cache.get(key)
                # Keys are per thread: another thread may invalidate or evict, never overwrite.
                assert got is None or got == i
                if i % 500 == 0:
                    cache.invalidate()
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) <= 50
