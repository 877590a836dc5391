"""Tests of sgm.telemetry: decaying rates, device counters, event bus, snapshot; and that
subscribers never hold up the miner (a real Miner on its embedded pool, the `sgm` CLI).

No test here asserts a tight wall-clock bound: deadlines are generous (a loaded 2-core box
must pass) and the assertions are about behaviour."""
from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sgm.telemetry import (
    DecayingRate,
    DeviceEvent,
    DeviceStats,
    Event,
    EventBus,
    JobEvent,
    LogEvent,
    ShareEvent,
    Subscription,
    Telemetry,
    event_to_dict,
)
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]
#: Generous deadline (s) for anything that should take a moment.
#: How long the blocked subscriber waits for the miner to move on (a busy machine is slow).
MOVE_ON_DEADLINE = 120.0
DEADLINE = 30.0


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


# --------------------------------------------------------------------------- DecayingRate


def feed(rate: DecayingRate, clock: FakeClock, hps: float, seconds: float,
         rng: random.Random, noise: float = 0.0) -> None:
    """Report hashes at ``hps`` in batches of random length for ``seconds``."""
    end = clock.t + seconds
    while clock.t < end:
        dt = min(rng.uniform(0.05, 0.6), end - clock.t)
        clock.advance(dt)
        rate.add(hps * dt * (1 + rng.uniform(-noise, noise)))


def test_no_data_reads_zero() -> None:
    clock = FakeClock()
    r = DecayingRate(clock=clock)
    assert r.rates() == {"5s": 0.0, "1m": 0.0, "5m": 0.0, "15m": 0.0}
    clock.advance(10)
    assert r.rates() == {"5s": 0.0, "1m": 0.0, "5m": 0.0, "15m": 0.0}
    assert r.average() == 0.0


def test_constant_rate_converges_all_windows() -> None:
    clock = FakeClock()
    r = DecayingRate(clock=clock)
    feed(r, clock, 2.5e6, 30.0, random.Random(1))
    rates = r.rates()
    # start-up bias corrected: even the 15 min window reads the input after 30 s
    for key, value in rates.items():
        assert value == pytest.approx(2.5e6, rel=0.01), key
    feed(r, clock, 2.5e6, 3000.0, random.Random(2))
    for key, value in r.rates().items():
        assert value == pytest.approx(2.5e6, rel=0.01), key
    assert r.average() == pytest.approx(2.5e6, rel=0.01)


def test_noisy_rate_converges_within_a_few_percent() -> None:
    clock = FakeClock()
    r = DecayingRate(clock=clock)
    feed(r, clock, 1e9, 1800.0, random.Random(3), noise=0.3)
    rates = r.rates()
    for key in ("1m", "5m", "15m"):
        assert rates[key] == pytest.approx(1e9, rel=0.04), key
    assert rates["5s"] == pytest.approx(1e9, rel=0.15)


def test_step_change_short_window_follows_long_lags() -> None:
    clock = FakeClock()
    r = DecayingRate(clock=clock)
    rng = random.Random(4)
    feed(r, clock, 1e6, 1800.0, rng)
    feed(r, clock, 3e6, 60.0, rng)
    rates = r.rates()
    assert rates["5s"] == pytest.approx(3e6, rel=0.01)
    # the 1 min window has seen one time constant of the new rate: 1 - 1/e of the step
    assert rates["1m"] == pytest.approx(1e6 + 2e6 * (1 - math.exp(-1)), rel=0.01)
    assert rates["5m"] < rates["1m"]
    # 15 min: 1800 s of 1e6 then 60 s of 3e6, normalised by the weight of 1860 s
    k_new, k_all = math.exp(-60 / 900), math.exp(-1860 / 900)
    expect = (1e6 * (k_new - k_all) + 3e6 * (1 - k_new)) / (1 - k_all)
    assert rates["15m"] == pytest.approx(expect, rel=0.01)


def test_decays_toward_zero_after_input_stops() -> None:
    clock = FakeClock()
    r = DecayingRate(clock=clock)
    feed(r, clock, 1e6, 1000.0, random.Random(5))
    clock.advance(30)                       # nothing reported for 30 s
    rates = r.rates()
    assert rates["5s"] < 1e6 * 0.01         # e^-6
    assert rates["1m"] == pytest.approx(1e6 * math.exp(-0.5), rel=0.02)
    assert rates["15m"] == pytest.approx(1e6 * math.exp(-30 / 900), rel=0.02)
    clock.advance(3000)
    assert all(v < 1e6 * 0.04 for v in r.rates().values())
    clock.advance(30000)
    assert all(v < 1.0 for v in r.rates().values())


def test_reporting_granularity_does_not_matter() -> None:
    clock_a, clock_b = FakeClock(0.0), FakeClock(0.0)
    a = DecayingRate(clock=clock_a)
    b = DecayingRate(clock=clock_b)
    for _ in range(100):                    # 100 s at 1000 H/s, reported every 1 s ...
        a.add(1000.0, clock_a.advance(1.0))
    for _ in range(10):                     # ... or every 10 s
        b.add(10000.0, clock_b.advance(10.0))
    for key in ("1m", "5m", "15m"):
        assert a.rates()[key] == pytest.approx(b.rates()[key], rel=1e-9)


def test_explicit_now_and_bad_input() -> None:
    r = DecayingRate(start=0.0)
    r.add(500, now=1.0)
    r.add(500, now=2.0)
    assert r.rates(now=2.0)["5s"] == pytest.approx(500.0)
    assert r.total == 1000
    with pytest.raises(ValueError, match="hashes"):
        r.add(-1, now=3.0)
    with pytest.raises(ValueError, match="windows"):
        DecayingRate(start=0.0, windows={"x": 0})
    # a sample stamped in the past is counted, not lost
    r.add(100, now=1.5)
    assert r.total == 1100


# --------------------------------------------------------------------------- DeviceStats


def test_device_stats_batch_accounting() -> None:
    clock = FakeClock()
    d = DeviceStats("cpu0", kind="cpu", impl="shani", clock=clock)
    for _ in range(200):                    # busy half of the time
        clock.advance(0.1)
        d.record_batch(100_000, 0.05, 1 << 16, 0.020)
    assert d.hashes == 20_000_000
    assert d.batches == 200
    assert d.batch_size == 1 << 16
    assert d.latency_ewma_ms == pytest.approx(20.0)
    assert d.utilisation() == pytest.approx(0.5, rel=0.01)
    assert d.rates()["5s"] == pytest.approx(1e6, rel=0.01)
    d.record_batch(0, 0.0, 1024, 0.120)
    assert d.latency_last_ms == pytest.approx(120.0)
    assert d.latency_ewma_ms == pytest.approx(20.0 + 0.2 * 100.0)
    with pytest.raises(ValueError, match="latency_s"):
        d.record_batch(1, 0.1, 1, -1.0)


def test_device_stats_thread_safe() -> None:
    d = DeviceStats("gpu0", kind="opencl")

    def worker() -> None:
        for i in range(2000):
            d.record_batch(10, 0.0, 1, 0.0)
            d.record_share_result(i % 3 != 0, "low difficulty")
            d.record_hw_error()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert d.hashes == 80_000 and d.batches == 8000 and d.hw_errors == 8000
    assert d.accepted + sum(d.rejected.values()) == 8000
    assert d.rejected == {"low difficulty": 4 * 667}


# --------------------------------------------------------------------------- EventBus


def test_bus_delivers_in_order() -> None:
    bus = EventBus()
    seen: list[int] = []
    pushed = bus.subscribe(lambda e: seen.append(e.nonce))
    sub = bus.subscribe(maxsize=100)
    for n in range(50):
        bus.publish(ShareEvent("cpu0", "j", n, 1.0))
    assert pushed.close()                  # drains what is buffered, then ends the thread
    assert seen == list(range(50))
    assert pushed.handled == pushed.delivered == 50
    assert [e.nonce for e in sub.drain()] == list(range(50))
    assert sub.dropped == 0
    assert bus.published == 50


def test_bus_bounded_drops_oldest() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=10)
    for n in range(25):
        bus.publish(JobEvent(f"job{n}", False))
    assert sub.dropped == 15
    assert len(sub) == 10
    assert [e.job_id for e in sub.drain()] == [f"job{n}" for n in range(15, 25)]
    assert sub.get_nowait() is None


def test_publishing_many_at_once_is_publishing_each_in_order() -> None:
    """publish_many (a batch of share answers): the same order, kinds filter, bound and
    counts as one publish per event."""
    bus = EventBus()
    seen: list[int] = []
    pushed = bus.subscribe(lambda e: seen.append(e.nonce), kinds=ShareEvent)
    small = bus.subscribe(maxsize=10)
    jobs_only = bus.subscribe(maxsize=100, kinds=JobEvent)
    bus.publish_many([ShareEvent("cpu0", "j", n, 1.0) for n in range(8)])
    bus.publish_many([])
    bus.publish_many([ShareEvent("cpu0", "j", n, 1.0) for n in range(8, 25)] + [JobEvent("job9", True)])
    assert pushed.close()
    assert seen == list(range(25)) and pushed.handled == 25
    assert small.dropped == 16 and small.delivered == 26
    assert [getattr(e, "nonce", None) for e in small.drain()] == list(range(16, 25)) + [None]
    assert [e.job_id for e in jobs_only.drain()] == ["job9"] and jobs_only.dropped == 0
    assert bus.published == 26
    with pytest.raises(TypeError):
        bus.publish_many(["not an event"])  # type: ignore[list-item]


def test_a_gathering_subscriber_takes_a_flood_in_few_calls_and_loses_nothing() -> None:
    """gather: the dispatcher waits that long after the first event, so a flood published
    a few at a time reaches the callback in a few batches; every event arrives, in order."""
    bus = EventBus()
    seen: list[int] = []

    def cb(e: ShareEvent) -> None:
        seen.append(e.nonce)

    sub = bus.subscribe(cb, maxsize=10_000, gather=0.5)
    for n in range(0, 3000, 3):
        bus.publish_many([ShareEvent("cpu0", "j", n + k, 1.0) for k in range(3)])
    assert sub.close(timeout=30)
    assert seen == list(range(3000)) and sub.dropped == 0
    with pytest.raises(ValueError, match="gather"):
        bus.subscribe(cb, gather=-1)


def test_share_results_recorded_in_a_batch_count_and_publish_like_one_by_one() -> None:
    one, many = Telemetry(), Telemetry()
    results = [("cpu0", "j1", n, 2.0, n % 4 != 0, None if n % 4 else "low difficulty")
               for n in range(40)] + [("gpu0", "j1", 99, 8.0, True, None)]
    subs = [t.bus.subscribe(maxsize=100) for t in (one, many)]
    for r in results:
        one.record_share_result(*r)
    many.record_share_results(results)
    a, b = one.snapshot(), many.snapshot()
    assert a["accepted"] == b["accepted"] == 31
    assert a["rejected_reasons"] == b["rejected_reasons"] == {"low difficulty": 10}
    assert [d["accepted"] for d in b["devices"]] == [30, 1]
    assert [replace(e, ts=0) for e in subs[0].drain()] == [replace(e, ts=0) for e in subs[1].drain()]


def test_callback_exceptions_do_not_break_publishing(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    good: list[object] = []

    def bad(event: object) -> None:
        raise RuntimeError("subscriber bug")

    bad_sub = bus.subscribe(bad)
    good_sub = bus.subscribe(good.append)
    with caplog.at_level(logging.ERROR, logger="sgm.telemetry"):
        for n in range(5):
            bus.publish(DeviceEvent("cpu0", "hw_error", str(n)))
        assert bad_sub.close() and good_sub.close()
    assert len(good) == 5
    assert bad_sub.errors == 5
    assert "subscriber bug" in caplog.text


def test_concurrent_publishers() -> None:
    bus = EventBus()
    got: list[ShareEvent] = []
    lock = threading.Lock()

    def on_event(e: ShareEvent) -> None:
        with lock:
            got.append(e)

    pushed = bus.subscribe(on_event, maxsize=100_000)
    sub = bus.subscribe(maxsize=100_000)
    small = bus.subscribe(maxsize=50)
    n_threads, per = 4, 2000
    barrier = threading.Barrier(n_threads)

    def publisher(i: int) -> None:
        barrier.wait()
        for n in range(per):
            bus.publish(ShareEvent(f"dev{i}", "j", n, 1.0))

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pushed.close(timeout=60)
    queued = sub.drain()
    assert len(got) == len(queued) == n_threads * per
    for i in range(n_threads):      # each publisher's events arrive in its own order
        assert [e.nonce for e in queued if e.device == f"dev{i}"] == list(range(per))
        assert [e.nonce for e in got if e.device == f"dev{i}"] == list(range(per))
    assert small.dropped == n_threads * per - 50 and len(small) == 50
    assert bus.published == n_threads * per


def test_get_timeout_close_and_iteration() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    t0 = time.monotonic()
    assert sub.get(timeout=0.05) is None
    assert time.monotonic() - t0 >= 0.04
    bus.publish(LogEvent("INFO", "a"))
    bus.publish(LogEvent("INFO", "b"))

    # a reader blocked in iteration ends once the subscription closes
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(e.message for e in sub))
    reader.start()
    time.sleep(0.05)
    bus.publish(LogEvent("INFO", "c"))
    time.sleep(0.05)
    sub.close()
    reader.join(5)
    assert not reader.is_alive()
    assert seen == ["a", "b", "c"]
    assert sub.closed
    bus.publish(LogEvent("INFO", "d"))        # no longer delivered
    assert sub.get(timeout=0) is None
    assert bus.subscribers == 0
    assert bus.unsubscribe(sub) is False


def test_kinds_filter_and_validation() -> None:
    bus = EventBus()
    jobs = bus.subscribe(kinds=JobEvent)
    bus.publish(JobEvent("j1", True))
    bus.publish(LogEvent("INFO", "x"))
    assert [type(e) for e in jobs.drain()] == [JobEvent]
    with pytest.raises(ValueError, match="maxsize"):
        bus.subscribe(maxsize=0)
    with pytest.raises(TypeError, match="callback"):
        bus.subscribe(callback=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="event"):
        bus.publish("not an event")  # type: ignore[arg-type]
    pushed = bus.subscribe(print, kinds=JobEvent)
    with pytest.raises(RuntimeError):
        pushed.get()
    with pytest.raises(RuntimeError):
        pushed.drain()
    assert pushed.close()


def test_callback_runs_on_its_own_thread_not_the_publishers() -> None:
    bus = EventBus()
    where: list[int] = []
    sub = bus.subscribe(lambda e: where.append(threading.get_ident()))
    publishers = [threading.get_ident()]
    bus.publish(JobEvent("main", True))

    def publisher() -> None:
        publishers.append(threading.get_ident())
        bus.publish(JobEvent("worker", True))

    t = threading.Thread(target=publisher)
    t.start()
    t.join(DEADLINE)
    assert sub.thread is not None and sub.thread.daemon
    dispatcher = sub.thread.ident
    assert sub.close()
    assert len(where) == 2
    assert set(where) == {dispatcher}
    assert not set(where) & set(publishers)
    assert bus.subscribe(maxsize=5).thread is None      # a queue has no thread of its own


def test_publish_returns_while_a_callback_blocks() -> None:
    bus = EventBus()
    entered, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def stuck(e: ShareEvent) -> None:
        entered.set()
        release.wait(DEADLINE)
        seen.append(e.nonce)

    sub = bus.subscribe(stuck, maxsize=1000)
    queue = bus.subscribe(maxsize=1000)
    bus.publish(ShareEvent("cpu0", "j", 0, 1.0))
    assert entered.wait(DEADLINE)

    def publish_more() -> None:
        for n in range(1, 200):
            bus.publish(ShareEvent("cpu0", "j", n, 1.0))

    publisher = threading.Thread(target=publish_more)
    publisher.start()
    publisher.join(DEADLINE)
    # every publish returned while the callback was still stuck in its first event
    assert not publisher.is_alive()
    assert not release.is_set() and seen == []
    assert len(queue) == 200 and len(sub) == 199 and sub.delivered == 200
    release.set()
    assert sub.close(timeout=DEADLINE)
    assert seen == list(range(200)) and sub.dropped == 0


def test_a_slow_callback_loses_the_oldest_events_and_counts_them() -> None:
    bus = EventBus()
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow(e: JobEvent) -> None:
        entered.set()
        release.wait(DEADLINE)
        seen.append(e.job_id)

    sub = bus.subscribe(slow, maxsize=10)
    bus.publish(JobEvent("job0", False))
    assert entered.wait(DEADLINE)       # the dispatcher holds job0; the buffer is empty
    for n in range(1, 26):
        bus.publish(JobEvent(f"job{n}", False))
    assert sub.dropped == 15 and len(sub) == 10
    release.set()
    assert sub.close(timeout=DEADLINE)
    assert seen == ["job0"] + [f"job{n}" for n in range(16, 26)]
    assert sub.handled == 11 and sub.delivered == 26 and sub.dropped == 15


def test_close_drains_the_buffer_then_ends_the_thread() -> None:
    bus = EventBus()
    seen: list[int] = []

    def slowish(e: ShareEvent) -> None:
        time.sleep(0.002)
        seen.append(e.nonce)

    sub = bus.subscribe(slowish, maxsize=1000)
    for n in range(100):
        bus.publish(ShareEvent("cpu0", "j", n, 1.0))
    assert sub.thread is not None
    assert sub.close(timeout=DEADLINE) is True
    assert seen == list(range(100)) and sub.handled == 100 and len(sub) == 0
    assert not sub.thread.is_alive() and sub.closed
    bus.publish(ShareEvent("cpu0", "j", 100, 1.0))      # no longer delivered
    assert seen == list(range(100)) and bus.subscribers == 0
    assert sub.close() is True                          # closing twice is harmless


def test_close_does_not_hang_on_a_stuck_callback(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    entered, release = threading.Event(), threading.Event()

    def stuck(e: Event) -> None:
        entered.set()
        release.wait(DEADLINE)

    sub = bus.subscribe(stuck)
    for n in range(6):
        bus.publish(LogEvent("INFO", str(n)))
    assert entered.wait(DEADLINE)
    result: list[bool] = []
    with caplog.at_level(logging.WARNING, logger="sgm.telemetry"):
        closer = threading.Thread(target=lambda: result.append(sub.close(timeout=0.2)))
        closer.start()
        closer.join(DEADLINE)
        assert not closer.is_alive()                   # close() gave up instead of hanging
    assert result == [False]
    assert "did not finish" in caplog.text and "5 buffered event(s) discarded" in caplog.text
    assert sub.dropped == 5 and len(sub) == 0
    release.set()                                      # the callback returns at last ...
    assert sub.thread is not None
    sub.thread.join(DEADLINE)
    assert not sub.thread.is_alive()                   # ... and the thread ends
    assert sub.handled == 1


def test_a_callback_may_close_its_own_subscription() -> None:
    bus = EventBus()
    seen: list[str] = []
    holder: list[Subscription] = []

    def once(e: JobEvent) -> None:
        seen.append(e.job_id)
        holder[0].close()

    holder.append(bus.subscribe(once))
    bus.publish(JobEvent("a", False))
    assert holder[0].thread is not None
    holder[0].thread.join(DEADLINE)
    assert not holder[0].thread.is_alive() and holder[0].closed
    assert seen == ["a"]


# --------------------------------------------------------------------------- Telemetry


def test_snapshot_shape_and_values() -> None:
    clock = FakeClock()
    tele = Telemetry(clock=clock)
    tele.register_device("cpu0", kind="cpu", impl="shani")
    tele.register_device("gpu0", kind="opencl", impl="sha256d.cl")
    sub = tele.subscribe()
    for _ in range(100):
        clock.advance(0.1)
        tele.record_batch("cpu0", 50_000, 0.1, 4096, 0.01)
        tele.record_batch("gpu0", 200_000, 0.1, 1 << 20, 0.05)
    tele.record_share_found("gpu0", "j1", 0x1234, 12.5)
    tele.record_share_result("gpu0", "j1", 0x1234, 12.5, True)
    tele.record_share_result("cpu0", "j1", 0x99, 2.0, False, "low difficulty share")
    tele.record_share_result("cpu0", "j1", 0x98, 2.0, False, "duplicate")
    tele.record_stale("cpu0", "j0", 0x5, 1.0)
    tele.record_duplicate("gpu0")
    tele.record_hw_error("gpu0", detail="bad nonce")
    tele.set_device_enabled("gpu0", False)
    tele.job("j2", clean=True)
    snap = tele.snapshot()
    json.dumps(snap)                                   # JSON-ready
    for key in ("elapsed_s", "hashes", "hashrate", "accepted", "rejected", "stale",
                "hw_errors", "best_share_diff", "devices"):
        assert key in snap, key
    assert snap["elapsed_s"] == pytest.approx(10.0)
    assert snap["hashes"] == 25_000_000
    assert snap["hashrate"] == pytest.approx(2.5e6, rel=0.01)
    assert (snap["accepted"], snap["rejected"], snap["stale"]) == (1, 2, 1)
    assert snap["rejected_reasons"] == {"low difficulty share": 1, "duplicate": 1}
    assert snap["hw_errors"] == 1 and snap["duplicates_suppressed"] == 1
    assert snap["best_share_diff"] == 12.5
    names = [d["name"] for d in snap["devices"]]
    assert names == ["cpu0", "gpu0"]
    cpu, gpu = snap["devices"]
    for key in ("name", "kind", "impl", "hashes", "hashrate", "accepted", "hw_errors",
                "latency_ms", "batch_size", "rates", "utilisation", "enabled"):
        assert key in cpu, key
    assert cpu["kind"] == "cpu" and gpu["kind"] == "opencl"
    assert cpu["hashrate"] == pytest.approx(5e5, rel=0.01)
    assert gpu["hashrate"] == pytest.approx(2e6, rel=0.01)
    assert cpu["utilisation"] == pytest.approx(1.0, rel=0.01)   # 0.1 s busy / 0.1 s
    assert gpu["utilisation"] == pytest.approx(1.0, rel=0.01)
    assert gpu["latency_ms"] == pytest.approx(50.0)
    assert gpu["batch_size"] == 1 << 20
    assert gpu["enabled"] is False and cpu["enabled"] is True
    assert (gpu["accepted"], gpu["hw_errors"], cpu["rejected"], cpu["stale"]) == (1, 1, 2, 1)
    kinds = [type(e).__name__ for e in sub.drain()]
    assert kinds == ["ShareEvent"] * 5 + ["DeviceEvent", "DeviceEvent", "JobEvent"]
    as_dict = event_to_dict(JobEvent("j3", False, ts=5.0))
    assert as_dict == {"type": "JobEvent", "job_id": "j3", "clean": False, "ts": 5.0}
    json.dumps(as_dict)


def test_unknown_device_auto_registers() -> None:
    tele = Telemetry()
    tele.record_batch("mystery", 10, 0.0, 10, 0.001)
    snap = tele.snapshot()
    assert snap["devices"][0]["name"] == "mystery"
    assert snap["devices"][0]["kind"] == "unknown"
    assert snap["hashes"] == 10


def test_telemetry_concurrent_record_batch() -> None:
    tele = Telemetry()

    def worker(i: int) -> None:
        for _ in range(3000):
            tele.record_batch(f"cpu{i % 2}", 7, 0.0, 7, 0.0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = tele.snapshot()
    assert snap["hashes"] == 4 * 3000 * 7
    assert sorted(d["hashes"] for d in snap["devices"]) == [2 * 3000 * 7] * 2


# --------------------------------------------------------------------------- the miner


def test_a_subscriber_blocked_for_5s_delays_neither_share_submission_nor_a_job_switch() -> None:
    """A real Miner on its embedded pool; the only subscriber blocks in its first event for
    at least 5 s, and until the miner has moved on (shares accepted by the pool, counted by
    telemetry, a new job in the scheduler) -- on a busy machine that can take longer.
    Publishing from the network loop and the device threads never waits for it."""
    from sgm.miner import Miner, MinerConfig

    block_s = 5.0
    entered, release, woke = threading.Event(), threading.Event(), threading.Event()
    threads: set[str] = set()

    def sleepy(event: Event) -> None:
        threads.add(threading.current_thread().name)
        if not entered.is_set():
            t0 = time.monotonic()
            entered.set()
            release.wait(MOVE_ON_DEADLINE)
            time.sleep(max(0.0, block_s - (time.monotonic() - t0)))
            woke.set()

    miner = Miner(MinerConfig(threads=1, local_jobs=None, local_job_interval=0.5,
                              local_difficulty_bits=10))
    sub = miner.subscribe(sleepy)
    miner.start()
    try:
        assert entered.wait(DEADLINE), "no event reached the subscriber"
        pool, tel = miner.local_pool, miner.telemetry
        assert pool is not None
        job = miner.scheduler.current_job
        first_job = job.job_id if job is not None else None
        accepted_pool, accepted_tel = pool.stats.accepted, tel.total.accepted

        def progress() -> dict[str, Any]:
            job = miner.scheduler.current_job
            return {"pool": pool.stats.accepted - accepted_pool,
                    "telemetry": tel.total.accepted - accepted_tel,
                    "job": job.job_id if job is not None else None}

        def progressed() -> bool:
            seen = progress()
            return seen["pool"] >= 3 and seen["telemetry"] >= 3 and seen["job"] != first_job

        moved_on = wait_until(progressed, timeout=MOVE_ON_DEADLINE)
        still_blocked = not woke.is_set()     # it waits for `release`: True by construction
        release.set()
        assert moved_on, f"while the subscriber was blocked the miner did not move on: {progress()}"
        assert still_blocked
        assert sub.delivered > 1        # events kept coming into its buffer meanwhile
    finally:
        release.set()
        miner.stop()
    assert sub.close(timeout=DEADLINE)
    assert woke.is_set() and sub.handled > 1
    # the callback ran on the subscription's thread only: never the loop or a device
    assert sub.thread is not None and threads == {sub.thread.name}
    assert not any(name.startswith(("sgm-net", "sgm-cpu")) for name in threads)


# --------------------------------------------------------------------------- the CLI


def sgm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sgm", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("mode", ["default", "quiet"])
def test_a_refused_pool_connection_is_reported_once_per_attempt(mode: str) -> None:
    """Each failed connect is told once: by the Printer on stdout (the Stratum client's own
    log record of it stays off stderr), or with -q, where the Printer is silent, by that
    log record on stderr."""
    with socket.socket() as closed:          # bound, never listening: connections refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        extra = ["-q"] if mode == "quiet" else []
        r = sgm("-o", f"stratum+tcp://127.0.0.1:{port}", "-u", "w", "-t", "1",
                "--time-limit", "3", *extra)
    assert r.returncode == 0, r.stderr
    text = f"connect to 127.0.0.1:{port} failed"
    told, silent = (r.stdout, r.stderr) if mode == "default" else (r.stderr, r.stdout)
    lines = [line for line in told.splitlines() if text in line]
    assert lines, (r.stdout, r.stderr)                 # the user is told ...
    assert all(line.count(text) == 1 for line in lines)
    assert text not in silent                          # ... once per attempt, not twice
    assert (r.stdout + r.stderr).count(text) == len(lines)
    if mode == "default":
        assert all("pool: disconnected" in line for line in lines)
    assert "final statistics" in r.stdout


def test_the_last_share_lines_print_before_the_final_statistics() -> None:
    r = sgm("--jobs", "1", "--duration", "1.5", "--difficulty", "14", "-t", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    final = next(i for i, line in enumerate(lines) if "final statistics" in line)
    shares = [i for i, line in enumerate(lines) if line.startswith("[") and "share cpu0" in line]
    assert shares and max(shares) < final
    accepted = int(lines[final + 2].split("accepted")[1].split()[0])
    # past 10 share lines a second, the rest of that second is one line with the counts
    held = [i for i, line in enumerate(lines) if "more shares (" in line]
    assert max(held, default=0) < final
    shown = sum("accepted" in lines[i] for i in shares)
    summed = sum(int(m.replace(",", "")) for i in held
                 for m in re.findall(r"([\d,]+) accepted", lines[i]))
    assert shown + summed == accepted
