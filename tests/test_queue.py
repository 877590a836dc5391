"""Tests of the native batch queue (sgm._native._queue.WorkQueue)."""
from __future__ import annotations

import random
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sgm._native._queue import NONCE_SPACE, WorkQueue

FRESH, OUT, PENDING, DONE = "fresh", "out", "pending", "done"


# --------------------------------------------------------------------------- basics


def test_no_job_pulls_none() -> None:
    q = WorkQueue()
    assert q.pull(10) is None
    assert q.generation == -1
    assert q.exhausted
    assert not q.has_job


def test_order_midstate_by_midstate() -> None:
    q = WorkQueue()
    q.set_job(7, 3, 100, 110)
    got = []
    while (u := q.pull(4)) is not None:
        got.append(u)
    assert got == [
        (7, 0, 100, 4), (7, 0, 104, 4), (7, 0, 108, 2),
        (7, 1, 100, 4), (7, 1, 104, 4), (7, 1, 108, 2),
        (7, 2, 100, 4), (7, 2, 104, 4), (7, 2, 108, 2),
    ]
    assert q.exhausted
    assert q.handed_out == 30
    assert q.remaining == 0


def test_full_space_defaults() -> None:
    q = WorkQueue()
    q.set_job(0, 2)
    assert q.pull(1 << 40) == (0, 0, 0, NONCE_SPACE)
    assert q.pull(5) == (0, 1, 0, 5)
    assert q.pull(NONCE_SPACE) == (0, 1, 5, NONCE_SPACE - 5)
    assert q.pull(1) is None
    assert q.handed_out == 2 * NONCE_SPACE


def test_give_back_is_reissued_first() -> None:
    q = WorkQueue()
    q.set_job(1, 2, 0, 100)
    g, m, s, c = q.pull(40)
    assert q.give_back(g, m, s + 10, c - 10) is True
    assert q.returned_pending == 30
    assert q.pull(7) == (1, 0, 10, 7)
    assert q.pull(100) == (1, 0, 17, 23)
    assert q.returned_pending == 0
    assert q.pull(100) == (1, 0, 40, 60)   # fresh work resumes at the cursor


def test_stale_give_back_dropped() -> None:
    q = WorkQueue()
    q.set_job(1, 1, 0, 100)
    old = q.pull(50)
    q.set_job(2, 1, 0, 100)
    assert q.give_back(*old) is False
    assert q.returned_pending == 0
    assert q.stale_dropped == 1
    assert q.pull(100) == (2, 0, 0, 100)


def test_set_job_flushes_pending_of_other_generation() -> None:
    q = WorkQueue()
    q.set_job(1, 1, 0, 100)
    assert q.give_back(*q.pull(50))
    assert q.returned_pending == 50
    q.set_job(2, 1, 0, 10)
    assert q.returned_pending == 0
    assert q.pull(100) == (2, 0, 0, 10)


def test_flush() -> None:
    q = WorkQueue()
    q.set_job(5, 2, 0, 100)
    u = q.pull(10)
    assert q.flush() == 5
    assert q.pull(10) is None
    assert q.exhausted
    assert q.give_back(*u) is False          # flushed generation is stale
    with pytest.raises(ValueError, match="generation"):
        q.set_job(5, 1)                        # generations only go up
    q.set_job(6, 1, 0, 3)
    assert q.pull(10) == (6, 0, 0, 3)


def test_generation_must_increase() -> None:
    q = WorkQueue()
    q.set_job(3, 1)
    with pytest.raises(ValueError, match="generation"):
        q.set_job(3, 1)
    with pytest.raises(ValueError, match="generation"):
        q.set_job(2, 1)
    assert q.generation == 3


def test_adjacent_give_backs_merge_and_pending_is_bounded() -> None:
    q = WorkQueue(max_pending=2)
    q.set_job(1, 1, 0, 1000)
    units = [q.pull(10) for _ in range(10)]
    # adjacent give-backs coalesce into one pending unit
    assert q.give_back(*units[1])
    assert q.give_back(*units[2])
    assert q.give_back(*units[0])
    assert q.pending_units == 1
    assert q.give_back(*units[5])
    assert q.pending_units == 2
    with pytest.raises(OverflowError):
        q.give_back(*units[8])
    assert q.returned_pending == 40


def test_give_back_validation() -> None:
    q = WorkQueue()
    q.set_job(1, 2, 100, 200)
    q.pull(50)
    with pytest.raises(ValueError, match="nonce_count"):
        q.give_back(1, 0, 100, 0)
    with pytest.raises(ValueError, match="midstate_id"):
        q.give_back(1, 2, 100, 5)
    with pytest.raises(ValueError, match="nonce_start"):
        q.give_back(1, 0, 90, 20)             # starts before the job's range
    with pytest.raises(ValueError, match="nonce_start"):
        q.give_back(1, 0, 140, 20)            # beyond the cursor: never handed out
    with pytest.raises(ValueError, match="nonce_start"):
        q.give_back(1, 1, 100, 1)             # midstate 1 not reached yet
    assert q.give_back(1, 0, 110, 10)
    with pytest.raises(ValueError, match="nonce_start"):
        q.give_back(1, 0, 115, 10)            # overlaps a pending give-back
    assert q.returned_pending == 10


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda q: q.pull(0), ValueError, "max_nonces"),
        (lambda q: q.pull(-3), ValueError, "max_nonces"),
        (lambda q: q.pull(1.5), TypeError, "max_nonces"),
        (lambda q: q.pull("9"), TypeError, "max_nonces"),
        (lambda q: q.pull(True), TypeError, "max_nonces"),
        (lambda q: q.set_job(-1, 1), ValueError, "generation"),
        (lambda q: q.set_job(2**63, 1), ValueError, "generation"),
        (lambda q: q.set_job("1", 1), TypeError, "generation"),
        (lambda q: q.set_job(9, 0), ValueError, "n_midstates"),
        (lambda q: q.set_job(9, 2**32), ValueError, "n_midstates"),
        (lambda q: q.set_job(9, None), TypeError, "n_midstates"),
        (lambda q: q.set_job(9, 1, -1), ValueError, "nonce_start"),
        (lambda q: q.set_job(9, 1, 2**32), ValueError, "nonce_start"),
        (lambda q: q.set_job(9, 1, 5.0), TypeError, "nonce_start"),
        (lambda q: q.set_job(9, 1, 10, 10), ValueError, "nonce_end"),
        (lambda q: q.set_job(9, 1, 0, 2**32 + 1), ValueError, "nonce_end"),
        (lambda q: q.give_back(-1, 0, 0, 1), ValueError, "generation"),
        (lambda q: q.give_back(1, -1, 0, 1), ValueError, "midstate_id"),
        (lambda q: q.give_back(1, 0, -1, 1), ValueError, "nonce_start"),
        (lambda q: q.give_back(1, 0, 0, 0), ValueError, "nonce_count"),
        (lambda q: q.give_back(1, 0, 2**32 - 1, 2), ValueError, "nonce_count"),
        (lambda q: q.give_back(1, 0, 0, 1.0), TypeError, "nonce_count"),
        (lambda q: q.give_back(1, "0", 0, 1), TypeError, "midstate_id"),
        (lambda q: WorkQueue(max_pending=0), ValueError, "max_pending"),
    ],
)
def test_bad_arguments_name_the_argument(call, exc, name) -> None:
    q = WorkQueue()
    q.set_job(1, 1, 0, 1000)
    q.pull(10)
    with pytest.raises(exc, match=name):
        call(q)
    # the queue is unharmed
    assert q.pull(5) == (1, 0, 10, 5)


# --------------------------------------------------------------------------- state machine


class QueueMachine(RuleBasedStateMachine):
    """Model: every nonce of the current job is fresh, out (held by a worker), pending
    (given back, waiting) or done; the queue must agree with the model at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.q = WorkQueue()
        self.gen = -1
        self.has_job = False
        self.n_mid = 0
        self.lo = self.hi = 0
        self.state: dict[tuple[int, int], str] = {}
        self.out: list[tuple[int, int, int, int]] = []
        self.stale: list[tuple[int, int, int, int]] = []
        self.handed = 0
        self.pulled_units = 0

    @initialize(n_mid=st.integers(1, 3), lo=st.integers(0, 2**32 - 64), size=st.integers(1, 60))
    def first_job(self, n_mid: int, lo: int, size: int) -> None:
        self._set_job(1, n_mid, lo, size)

    def _set_job(self, step: int, n_mid: int, lo: int, size: int) -> None:
        self.gen += step
        self.q.set_job(self.gen, n_mid, lo, lo + size)
        self.has_job = True
        self.n_mid, self.lo, self.hi = n_mid, lo, lo + size
        self.state = {(m, n): FRESH for m in range(n_mid) for n in range(lo, lo + size)}
        self.stale.extend(self.out)
        self.out = []
        self.handed = 0

    def _count(self, what: str) -> int:
        return sum(1 for v in self.state.values() if v == what)

    @rule(step=st.integers(1, 3), n_mid=st.integers(1, 3), lo=st.integers(0, 2**32 - 64),
          size=st.integers(1, 60))
    def set_job(self, step: int, n_mid: int, lo: int, size: int) -> None:
        self._set_job(step, n_mid, lo, size)

    @rule()
    def flush(self) -> None:
        assert self.q.flush() == self.gen
        self.has_job = False
        self.state = {}
        self.stale.extend(self.out)
        self.out = []

    @rule(m=st.integers(1, 80))
    def pull(self, m: int) -> None:
        u = self.q.pull(m)
        pending = self._count(PENDING)
        fresh = self._count(FRESH)
        if not self.has_job or (pending == 0 and fresh == 0):
            assert u is None
            return
        assert u is not None
        g, mid, start, count = u
        assert g == self.gen
        assert 1 <= count <= m
        assert 0 <= mid < self.n_mid
        assert self.lo <= start and start + count <= self.hi   # no midstate crossing
        keys = [(mid, n) for n in range(start, start + count)]
        states = {self.state[k] for k in keys}
        if pending:
            assert states == {PENDING}, "given-back work must be re-issued before fresh work"
        else:
            assert states == {FRESH}
            first_fresh = min(k for k, v in self.state.items() if v == FRESH)
            assert (mid, start) == first_fresh
            assert count == min(m, self.hi - start)
        for k in keys:
            self.state[k] = OUT
        self.out.append(u)
        self.handed += count

    @precondition(lambda self: bool(self.out))
    @rule(data=st.data())
    def give_back_part(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.out) - 1))
        g, mid, start, count = self.out.pop(i)
        a = data.draw(st.integers(start, start + count - 1))
        b = data.draw(st.integers(a + 1, start + count))
        assert self.q.give_back(g, mid, a, b - a) is True
        for n in range(start, start + count):
            self.state[(mid, n)] = PENDING if a <= n < b else DONE

    @precondition(lambda self: bool(self.out))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        g, mid, start, count = self.out.pop(data.draw(st.integers(0, len(self.out) - 1)))
        for n in range(start, start + count):
            self.state[(mid, n)] = DONE

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data())
    def give_back_stale(self, data: st.DataObject) -> None:
        g, mid, start, count = self.stale.pop(data.draw(st.integers(0, len(self.stale) - 1)))
        before = self.q.returned_pending
        cut = data.draw(st.integers(0, count - 1))
        assert self.q.give_back(g, mid, start + cut, count - cut) is False
        assert self.q.returned_pending == before

    @precondition(lambda self: self.has_job)
    @rule(data=st.data())
    def give_back_invalid(self, data: st.DataObject) -> None:
        """A range holding a fresh (never handed out) or pending nonce is refused."""
        bad = [k for k, v in self.state.items() if v in (FRESH, PENDING)]
        if not bad:
            return
        mid, n = data.draw(st.sampled_from(sorted(bad)))
        a = data.draw(st.integers(self.lo, n))
        b = data.draw(st.integers(n + 1, self.hi))
        before = self.q.stats()
        with pytest.raises(ValueError, match="nonce_start"):
            self.q.give_back(self.gen, mid, a, b - a)
        after = self.q.stats()
        assert before == after

    @precondition(lambda self: self.has_job)
    @rule(m=st.integers(1, 2**33))
    def drain(self, m: int) -> None:
        """Pull everything; afterwards every nonce has been handed out."""
        while (u := self.q.pull(m)) is not None:
            g, mid, start, count = u
            assert g == self.gen and self.lo <= start and start + count <= self.hi
            for n in range(start, start + count):
                assert self.state[(mid, n)] in (FRESH, PENDING)
                self.state[(mid, n)] = OUT
            self.out.append(u)
            self.handed += count
        assert self._count(FRESH) == 0 and self._count(PENDING) == 0
        assert self.q.exhausted

    @invariant()
    def agrees_with_model(self) -> None:
        st_ = self.q.stats()
        assert st_["generation"] == self.gen
        assert st_["has_job"] == self.has_job
        if not self.has_job:
            assert st_["exhausted"] and st_["returned_pending"] == 0
            return
        pending = self._count(PENDING)
        fresh = self._count(FRESH)
        assert st_["returned_pending"] == pending
        assert st_["handed_out"] == self.handed
        assert st_["remaining"] == pending + fresh
        assert st_["exhausted"] == (pending + fresh == 0)

    @invariant()
    def handed_out_region_is_a_prefix(self) -> None:
        """No gaps: everything before the first fresh nonce has been handed out."""
        if not self.state:
            return
        fresh = [k for k, v in self.state.items() if v == FRESH]
        if fresh:
            first = min(fresh)
            assert all(v == FRESH for k, v in self.state.items() if k >= first)
            cursor = self.q.stats()["cursor"]
            assert cursor == first


TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- big spaces


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        assert not out or a >= out[-1][1], f"overlap at {a}"
        if out and a == out[-1][1]:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@settings(max_examples=80, deadline=None)
@given(
    n_mid=st.integers(1, 3),
    lo=st.integers(0, 2**31),
    ops=st.lists(
        st.tuples(st.integers(1, 2**32), st.booleans(), st.floats(0.0, 1.0)),
        min_size=1, max_size=60,
    ),
)
def test_full_width_ranges_tile_exactly(n_mid: int, lo: int,
                                        ops: list[tuple[int, bool, float]]) -> None:
    """With 32-bit sized ranges: scanned intervals never overlap and, after draining,
    cover every midstate's range exactly; given-back tails are re-issued once."""
    q = WorkQueue()
    q.set_job(1, n_mid, lo, NONCE_SPACE)
    done: dict[int, list[tuple[int, int]]] = {m: [] for m in range(n_mid)}
    given = 0
    for size, give, frac in ops:
        u = q.pull(size)
        if u is None:
            break
        g, mid, start, count = u
        assert g == 1 and start + count <= NONCE_SPACE and count <= size
        cut = int(count * frac)
        if give and 0 < cut < count:
            assert q.give_back(g, mid, start + cut, count - cut)
            given += count - cut
            done[mid].append((start, start + cut))
        else:
            done[mid].append((start, start + count))
    while (u := q.pull(2**32)) is not None:
        done[u[1]].append((u[2], u[2] + u[3]))
    for m in range(n_mid):
        assert _merge(done[m]) == [(lo, NONCE_SPACE)]
    assert q.handed_out == n_mid * (NONCE_SPACE - lo) + given


# --------------------------------------------------------------------------- threads


def test_concurrent_pulls_disjoint_and_gap_free() -> None:
    n_threads, n_mid, lo, hi = 8, 4, 1000, 1000 + 40_000
    q = WorkQueue()
    q.set_job(3, n_mid, lo, hi)
    results: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        rng = random.Random(i)
        mine = results[i]
        barrier.wait()
        while (u := q.pull(rng.randint(1, 8))) is not None:
            mine.append(u)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert sum(len(r) for r in results) > 30_000   # thread fairness is up to the OS
    per_mid: dict[int, list[tuple[int, int]]] = {m: [] for m in range(n_mid)}
    for r in results:
        for g, mid, start, count in r:
            assert g == 3
            per_mid[mid].append((start, start + count))
    for m in range(n_mid):
        assert _merge(per_mid[m]) == [(lo, hi)]
    assert q.handed_out == n_mid * (hi - lo)


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_pulls_hand_out_disjoint_units_that_tile_the_space(round_: int) -> None:
    """Threads pulling at once (each pull releases the GIL around the C lock) get
    disjoint units that together tile the space exactly once."""
    n_threads, n_mid, lo, hi = 4, 2, 0, 40_000
    q = WorkQueue()
    q.set_job(9, n_mid, lo, hi)
    results: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        barrier.wait()
        while (unit := q.pull(1 + (i + round_) % 4)) is not None:
            results[i].append(unit)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    per_mid: dict[int, list[tuple[int, int]]] = {m: [] for m in range(n_mid)}
    for r in results:
        for g, mid, start, count in r:
            assert g == 9
            per_mid[mid].append((start, start + count))
    for m in range(n_mid):
        assert _merge(per_mid[m]) == [(lo, hi)]
    assert q.handed_out == n_mid * (hi - lo)


def test_concurrent_pulls_with_give_backs() -> None:
    """4 threads pull, scan part of some units and give the rest back; every nonce ends
    up scanned exactly once."""
    n_threads, n_mid, lo, hi = 4, 3, 0, 30_000
    q = WorkQueue()
    q.set_job(1, n_mid, lo, hi)
    scanned: list[list[tuple[int, int, int]]] = [[] for _ in range(n_threads)]
    given = [0] * n_threads
    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        rng = random.Random(100 + i)
        barrier.wait()
        while (u := q.pull(rng.randint(1, 50))) is not None:
            g, mid, start, count = u
            if count > 1 and rng.random() < 0.2:
                cut = rng.randint(1, count - 1)
                assert q.give_back(g, mid, start + cut, count - cut)
                given[i] += count - cut
                count = cut
            scanned[i].append((mid, start, start + count))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    per_mid: dict[int, list[tuple[int, int]]] = {m: [] for m in range(n_mid)}
    for r in scanned:
        for mid, a, b in r:
            per_mid[mid].append((a, b))
    for m in range(n_mid):
        assert _merge(per_mid[m]) == [(lo, hi)]
    assert sum(given) > 0
    assert q.handed_out == n_mid * (hi - lo) + sum(given)
    assert q.exhausted and q.returned_pending == 0


def test_job_switch_while_threads_pull() -> None:
    """Units of an old generation given back after a switch are all dropped."""
    q = WorkQueue()
    q.set_job(1, 1, 0, 10_000_000)
    stop = threading.Event()
    outcomes: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def worker() -> None:
        while not stop.is_set():
            u = q.pull(97)
            if u is None:
                continue
            ok = q.give_back(*u) if u[3] > 0 else True
            with lock:
                outcomes.append((u[0], ok))
            q.pull(97)  # take it again so the cursor moves on

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for gen in range(2, 30):
        q.set_job(gen, 1, 0, 10_000_000)
    stop.set()
    for t in threads:
        t.join(30)
    assert outcomes
    # a give_back can only succeed while its generation is still current
    last = q.generation
    assert all(ok or g < last for g, ok in outcomes)
