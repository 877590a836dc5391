"""Telemetry: decaying hash rates, per-device counters and the event stream.

This module imports nothing else from sgm but the shared input checks; every other part
writes to it.

* :class:`DecayingRate` -- exponentially decaying hash-rate averages over 5 s, 1 min,
  5 min and 15 min windows (continuous-time, exact for piecewise-constant input,
  start-up bias corrected).
* :class:`DeviceStats` -- the counters of one device (or of all of them), thread-safe,
  one ``record_batch`` call per batch on the hot path.
* :class:`EventBus` -- bounded publish/subscribe; publishing only appends to each
  subscription's bounded buffer, slow subscribers lose their oldest events (and count
  them) instead of blocking the miner, and callback subscribers run on a dispatcher
  thread of their own, never on the publisher's (network or device) thread.
* :class:`Telemetry` -- the facade holding devices, totals and the bus, with a
  JSON-ready :meth:`Telemetry.snapshot`.
"""
from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sgm.checks import is_int, is_number

__all__ = [
    "WINDOWS", "DecayingRate", "DeviceStats", "Event", "JobEvent", "ShareEvent",
    "DeviceEvent", "LogEvent", "AnyEvent", "Subscription", "EventBus", "Telemetry",
    "event_to_dict", "CLOSE_TIMEOUT", "MAX_REJECT_REASONS", "OTHER_REASONS",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: Averaging windows (time constants, seconds) of :class:`DecayingRate`.
WINDOWS: dict[str, float] = {"5s": 5.0, "1m": 60.0, "5m": 300.0, "15m": 900.0}

#: Distinct reject reasons DeviceStats.rejected counts apart; later ones are counted
#: together under OTHER_REASONS (a pool that puts a job id or a hash in its error text
#: would otherwise add a key per share for as long as the miner runs).
MAX_REJECT_REASONS = 32
OTHER_REASONS = "(other reasons)"

#: Time constant (s) of the utilisation average.
UTILISATION_WINDOW = 10.0
#: Weight of the newest sample in the batch-latency EWMA.
LATENCY_ALPHA = 0.2
#: Seconds :meth:`Subscription.close` waits for a callback subscription to drain.
CLOSE_TIMEOUT = 5.0


def _check_nonneg(value: float, name: str) -> float:
    if not is_number(value):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


# --------------------------------------------------------------------------- rates


class DecayingRate:
    """Exponentially decaying averages of a rate (hashes per second).

    The estimate for a window of time constant tau is
    ``r(t) = (1/tau) * integral x(s) exp(-(t - s)/tau) ds`` where x is the hash rate;
    the hashes of each :meth:`add` are taken as spread evenly over the time since the
    previous add (or since ``start``), which makes the average independent of how often
    batches report.  Until a few tau have passed the integral is normalised by the
    weight seen so far, so a constant input reads as that constant from the start rather
    than ramping up.  Reading later without new input decays toward 0.

    Not thread-safe on its own; :class:`DeviceStats` guards it with its lock.
    """

    __slots__ = ("_clock", "_start", "_last", "_keys", "_taus", "_values", "total")

    def __init__(self, start: float | None = None, *, windows: Mapping[str, float] = WINDOWS,
                 clock: Clock = time.monotonic) -> None:
        if not windows:
            raise ValueError("windows must name at least one window")
        for key, tau in windows.items():
            if not (isinstance(tau, (int, float)) and tau > 0):
                raise ValueError(f"windows[{key!r}] must be a positive time constant, got {tau}")
        self._clock = clock
        self._keys: tuple[str, ...] = tuple(windows)
        self._taus: tuple[float, ...] = tuple(float(t) for t in windows.values())
        self._start = float(clock() if start is None else start)
        self._last = self._start
        self._values = [0.0] * len(self._taus)
        #: Hashes added since start.
        self.total: float = 0

    @property
    def start(self) -> float:
        return self._start

    def add(self, hashes: float, now: float | None = None) -> None:
        """Account ``hashes`` done between the previous add and ``now``."""
        _check_nonneg(hashes, "hashes")
        t = self._clock() if now is None else float(now)
        dt = t - self._last
        values = self._values
        if dt > 0:
            inv = hashes / dt
            for i, tau in enumerate(self._taus):
                x = dt / tau
                # r <- r * e^-x + (h/dt) * (1 - e^-x); expm1 keeps small x accurate
                keep = math.exp(-x)
                values[i] = values[i] * keep + inv * -math.expm1(-x)
            self._last = t
        else:
            # Same instant (or a sample from the past): an impulse at the latest time.
            for i, tau in enumerate(self._taus):
                values[i] += hashes / tau
        self.total += hashes

    def rates(self, now: float | None = None) -> dict[str, float]:
        """Averages per window, e.g. ``{"5s": .., "1m": .., "5m": .., "15m": ..}``."""
        t = self._clock() if now is None else float(now)
        if t < self._last:
            t = self._last
        elapsed = t - self._start
        if elapsed <= 0 or self.total == 0:
            return {k: 0.0 for k in self._keys}
        since = t - self._last
        out: dict[str, float] = {}
        for key, tau, value in zip(self._keys, self._taus, self._values, strict=False):
            weight = -math.expm1(-elapsed / tau)  # 1 - e^(-elapsed/tau): bias correction
            out[key] = value * math.exp(-since / tau) / weight
        return out

    def average(self, now: float | None = None) -> float:
        """Plain average since start: total / elapsed."""
        t = self._clock() if now is None else float(now)
        elapsed = max(t, self._last) - self._start
        return self.total / elapsed if elapsed > 0 else 0.0


# --------------------------------------------------------------------------- counters


@dataclass(eq=False)
class DeviceStats:
    """Counters of one device (or, for the totals, of all devices).

    Every method takes the instance's lock, so many threads may record at once.
    ``record_batch`` is the hot-path call: once per batch.
    """

    name: str
    kind: str = "cpu"           # "cpu" / "opencl" / "total" / "unknown"
    impl: str = ""
    enabled: bool = True
    clock: Clock = field(default=time.monotonic, repr=False)
    hashes: int = 0
    batches: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    found: int = 0
    stale: int = 0              # never sent (job gone) + refused by the pool as stale
    rejected_stale: int = 0     # of those, refused by the pool as stale ("Job not found")
    # the ledger: every candidate a device reported is one of found, stale_unchecked,
    # rules_dropped, duplicates_suppressed or hw_errors; every found share one of accepted,
    # rejected, rejected_stale, unanswered (the Miner's) or unsent
    candidates: int = 0         # candidates the result path took from the device
    stale_unchecked: int = 0    # of those, their job already gone (stale, never checked)
    rules_dropped: int = 0      # met the target scanned, not the pool's rules of now
    unsent: int = 0             # found and checked, never sent (stopping, not connected)
    duplicates_suppressed: int = 0
    hw_errors: int = 0
    best_share_diff: float = 0.0
    batch_size: int = 0
    latency_last_ms: float = 0.0
    latency_ewma_ms: float = 0.0
    started: float = field(default=0.0, repr=False)
    _rate: DecayingRate = field(init=False, repr=False)
    _busy: DecayingRate = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        now = self.clock()
        self.started = now
        self._rate = DecayingRate(now, clock=self.clock)
        self._busy = DecayingRate(now, windows={"u": UTILISATION_WINDOW}, clock=self.clock)

    # hot path ---------------------------------------------------------------

    def record_batch(self, hashes: int, seconds_busy: float, batch_size: int,
                     latency_s: float, now: float | None = None, batches: int = 1) -> None:
        """One finished batch (or ``batches`` of them, read together from a native
        worker's counters): ``hashes`` done, ``seconds_busy`` spent hashing, ``batch_size``
        nonces asked for, ``latency_s`` from pull to result."""
        t = self.clock() if now is None else now
        _check_nonneg(seconds_busy, "seconds_busy")
        _check_nonneg(latency_s, "latency_s")
        lat_ms = latency_s * 1e3
        with self._lock:
            self._rate.add(hashes, t)
            self._busy.add(seconds_busy, t)
            self.hashes += hashes
            first = self.batches == 0
            self.batches += batches
            self.batch_size = batch_size
            self.latency_last_ms = lat_ms
            if first:
                self.latency_ewma_ms = lat_ms
            else:
                self.latency_ewma_ms += LATENCY_ALPHA * (lat_ms - self.latency_ewma_ms)

    # rarer events -----------------------------------------------------------

    def record_share_found(self, difficulty: float) -> None:
        with self._lock:
            self.found += 1
            if difficulty > self.best_share_diff:
                self.best_share_diff = float(difficulty)

    def record_share_result(self, accepted: bool, reason: str | None = None) -> None:
        with self._lock:
            if accepted:
                self.accepted += 1
            else:
                key = reason or "unknown"
                if key not in self.rejected and len(self.rejected) >= MAX_REJECT_REASONS:
                    key = OTHER_REASONS
                self.rejected[key] = self.rejected.get(key, 0) + 1

    def record_stale(self, n: int = 1, *, refused: bool = False,
                     unchecked: bool = False) -> None:
        """``refused``: the pool got the share and refused it as stale; ``unchecked``: a
        candidate whose job was gone before it was checked; otherwise a share found and
        checked that was never sent (its job went away first, or the miner stopped)."""
        with self._lock:
            self.stale += n
            if refused:
                self.rejected_stale += n
            elif unchecked:
                self.stale_unchecked += n
            else:
                self.unsent += n

    def record_candidates(self, n: int) -> None:
        with self._lock:
            self.candidates += n

    def record_rules_dropped(self, n: int = 1) -> None:
        with self._lock:
            self.rules_dropped += n

    def record_duplicate(self, n: int = 1) -> None:
        with self._lock:
            self.duplicates_suppressed += n

    def record_hw_error(self, n: int = 1) -> None:
        with self._lock:
            self.hw_errors += n

    def set_enabled(self, enabled: bool) -> None:
        with self._lock:
            self.enabled = bool(enabled)

    # reading ----------------------------------------------------------------

    def rates(self, now: float | None = None) -> dict[str, float]:
        with self._lock:
            return self._rate.rates(now)

    def utilisation(self, now: float | None = None) -> float:
        """Fraction of wall time spent hashing over the last ~10 s, in [0, 1]."""
        with self._lock:
            busy = self._busy.rates(now)["u"]
        return min(1.0, max(0.0, busy))

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """JSON-ready view."""
        t = self.clock() if now is None else now
        with self._lock:
            rates = self._rate.rates(t)
            busy = self._busy.rates(t)["u"]
            rejected = dict(self.rejected)
            return {
                "name": self.name,
                "kind": self.kind,
                "impl": self.impl,
                "enabled": self.enabled,
                "hashes": self.hashes,
                "hashrate": rates["5s"],
                "hashrate_avg": self._rate.average(t),
                "rates": rates,
                "batches": self.batches,
                "found": self.found,
                "accepted": self.accepted,
                "rejected": sum(rejected.values()),
                "rejected_reasons": rejected,
                "stale": self.stale,
                "stale_dropped": self.stale - self.rejected_stale,
                "rejected_stale": self.rejected_stale,
                "candidates": self.candidates,
                "stale_unchecked": self.stale_unchecked,
                "rules_dropped": self.rules_dropped,
                "unsent": self.unsent,
                "duplicates_suppressed": self.duplicates_suppressed,
                "hw_errors": self.hw_errors,
                "best_share_diff": self.best_share_diff,
                "batch_size": self.batch_size,
                "latency_ms": self.latency_ewma_ms,
                "latency_last_ms": self.latency_last_ms,
                "utilisation": min(1.0, max(0.0, busy)),
                "elapsed_s": t - self.started,
            }


# --------------------------------------------------------------------------- events


class Event:
    """Marker base of all telemetry events."""

    __slots__ = ()


@dataclass(frozen=True)
class JobEvent(Event):
    job_id: str
    clean: bool
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ShareEvent(Event):
    """A share found (accepted None), answered by the pool (True/False), or dropped."""

    device: str
    job_id: str
    nonce: int
    difficulty: float
    accepted: bool | None = None
    reason: str | None = None
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class DeviceEvent(Event):
    """Something happened to a device: what = "enabled", "disabled", "hw_error", ..."""

    device: str
    what: str
    detail: str = ""
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class LogEvent(Event):
    level: str          # "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"
    message: str
    ts: float = field(default_factory=time.time)


AnyEvent = JobEvent | ShareEvent | DeviceEvent | LogEvent


def event_to_dict(event: Event) -> dict[str, Any]:
    """JSON-ready dict of an event, with its class name under "type"."""
    out = {"type": type(event).__name__}
    out.update(asdict(event))  # type: ignore[call-overload]
    return out


class Subscription:
    """One subscriber of an :class:`EventBus`: a bounded buffer of events.

    Publishers only append to the buffer; when it holds ``maxsize`` events the oldest is
    discarded and ``dropped`` counts it, so a slow reader never blocks a publisher.

    * Queue (pull) subscriptions: the reader takes events with :meth:`get`, :meth:`drain`
      or iteration, on whatever thread it likes.
    * Callback (push) subscriptions: a dispatcher thread of their own takes events from the
      buffer, oldest first, and calls ``callback(event)``; the callback therefore never runs
      on a publisher's thread (the network loop, a device worker).  Exceptions are logged
      and counted in ``errors``.

    :meth:`close` stops delivery; for a callback subscription it then waits (bounded) for
    the dispatcher to hand the events still buffered to the callback, and ends the thread.
    """

    def __init__(self, bus: EventBus, callback: Callable[[Event], Any] | None, maxsize: int,
                 kinds: tuple[type, ...] | None, gather: float = 0.0) -> None:
        self._bus = bus
        self.callback = callback
        self.maxsize = maxsize
        #: callback subscriptions: seconds the dispatcher lets events gather after the first
        #: (0: none); in a flood it then wakes a few times a second, not once per publish
        self.gather = gather
        self.kinds = kinds
        self._buf: collections.deque[Event] = collections.deque(maxlen=maxsize)
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._gave_up = False
        self._batch_left = 0      # events of the dispatcher's batch not yet started
        self._in_callback = False
        #: Events discarded: the buffer was full (oldest first), or close() gave up on them.
        self.dropped = 0
        #: Events accepted into the buffer.
        self.delivered = 0
        #: Events the callback has been called with (callback subscriptions).
        self.handled = 0
        #: Callback invocations that raised.
        self.errors = 0
        self._thread: threading.Thread | None = None
        if callback is not None:
            name = getattr(callback, "__qualname__", type(callback).__name__)
            self._thread = threading.Thread(target=self._dispatch, daemon=True,
                                            name=f"sgm-telemetry-{name}")
            self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def thread(self) -> threading.Thread | None:
        """The dispatcher thread of a callback subscription (None for a queue)."""
        return self._thread

    # publisher side ---------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        """Called by :meth:`EventBus.publish`: buffer ``event``, never wait for the reader."""
        if self.kinds is not None and not isinstance(event, self.kinds):
            return
        with self._cond:
            if self._closed:
                return
            if len(self._buf) == self.maxsize:
                self.dropped += 1  # deque(maxlen) discards the oldest on append
            self._buf.append(event)
            self.delivered += 1
            # readers wait only on an empty buffer and take all they find: wake one when it
            # stops being empty, not at every event (a share flood is thousands a second)
            if len(self._buf) == 1:
                self._cond.notify()

    def _deliver_many(self, events: list[Event]) -> None:
        """:meth:`_deliver` for each event under one lock, waking the reader once."""
        kinds = self.kinds
        if kinds is not None:
            events = [e for e in events if isinstance(e, kinds)]
            if not events:
                return
        with self._cond:
            if self._closed:
                return
            was_empty = not self._buf
            overflow = len(self._buf) + len(events) - self.maxsize
            if overflow > 0:
                self.dropped += min(overflow, len(self._buf) + len(events))
            self._buf.extend(events)
            self.delivered += len(events)
            if was_empty:
                self._cond.notify()

    # dispatcher thread (callback subscriptions) -----------------------------

    def _dispatch(self) -> None:
        callback = self.callback
        assert callback is not None
        cond, buf = self._cond, self._buf
        while True:
            with cond:
                while not buf and not self._closed:
                    cond.wait()
                if self.gather > 0 and buf and not self._closed and len(buf) < self.maxsize // 2:
                    # publishers notify only an empty buffer, so this waits the whole
                    # interval (a close wakes it at once)
                    cond.wait(self.gather)
                if not buf:
                    return  # closed and drained (or emptied by a close() that gave up)
                # everything buffered at once: one lock round trip per batch, not per event
                batch = list(buf)
                buf.clear()
                self._in_callback = True
            done = 0
            self._batch_left = len(batch)
            try:
                for event in batch:
                    if self._gave_up:    # close() stopped waiting: it counted the rest dropped
                        break
                    done += 1
                    self._batch_left = len(batch) - done
                    try:
                        callback(event)
                    except Exception:
                        self.errors += 1
                        log.exception("telemetry subscriber %r raised on %s; event skipped",
                                      callback, type(event).__name__)
            finally:
                with cond:
                    self._in_callback = False
                    self._batch_left = 0
                    self.handled += done
                    cond.notify_all()

    # reader side (queue subscriptions) --------------------------------------

    def _check_queue(self) -> None:
        if self.callback is not None:
            raise RuntimeError("get()/drain() are for queue subscriptions; this one has a callback")

    def get(self, timeout: float | None = None) -> Event | None:
        """Next event; waits up to ``timeout`` s (None: until one comes or the
        subscription closes).  None on timeout or when closed and empty."""
        self._check_queue()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._buf:
                if self._closed:
                    return None
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
            return self._buf.popleft()

    def get_nowait(self) -> Event | None:
        self._check_queue()
        with self._cond:
            return self._buf.popleft() if self._buf else None

    def drain(self) -> list[Event]:
        """Every buffered event, oldest first, leaving the buffer empty."""
        self._check_queue()
        with self._cond:
            out = list(self._buf)
            self._buf.clear()
            return out

    def __len__(self) -> int:
        """Events buffered and not yet taken (by the reader or the dispatcher)."""
        with self._cond:
            return len(self._buf)

    def __iter__(self) -> Iterator[Event]:
        """Events as they come, until the subscription is closed and drained."""
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    # closing ------------------------------------------------------------------

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Unsubscribe: no new events are buffered.

        A queue subscription keeps what is buffered for the reader (a blocked get()
        returns it, then None).  A callback subscription waits up to ``timeout`` s for the
        dispatcher to pass the buffered events to the callback and end; if the callback is
        stuck or too slow, the rest is discarded (counted in ``dropped``), a warning is
        logged and close() returns anyway; the thread ends once the callback returns.
        Returns True when everything buffered was handled (always True for a queue).
        Called from inside the callback, it does not wait for itself.
        """
        self._bus.unsubscribe(self)
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        with self._cond:
            # buffered, plus what the dispatcher took and has not started on
            left = len(self._buf) + self._batch_left
            stuck = self._in_callback
            if not thread.is_alive() or (not left and not stuck):
                return True  # drained (the thread is ending, if not ended yet)
            self.dropped += left
            self._buf.clear()
            self._gave_up = True
        log.warning("telemetry subscriber %r did not finish within %.1fs (%s); "
                    "%d buffered event(s) discarded", self.callback, timeout,
                    "its callback is still running" if stuck else "too slow", left)
        return False

    def _mark_closed(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Thread-safe publish/subscribe that never blocks a publisher on a slow reader.

    :meth:`publish` only appends the event to each subscription's bounded buffer; it never
    runs subscriber code (see :class:`Subscription`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: tuple[Subscription, ...] = ()
        self._published = 0

    def subscribe(self, callback: Callable[[Event], Any] | None = None, maxsize: int = 1000,
                  kinds: type | tuple[type, ...] | None = None, gather: float = 0.0) -> Subscription:
        """A new subscription of at most ``maxsize`` buffered events: with ``callback`` a
        push subscriber (called on its own dispatcher thread), else a queue to pull from.

        ``kinds`` restricts delivery to instances of those event classes; ``gather``
        (callback subscriptions) lets events gather that many seconds after the first
        before the callback sees them, for a reader that need not hear each at once.
        Close the subscription when done (a callback subscription holds a thread until then).
        """
        if not isinstance(gather, (int, float)) or not 0 <= gather <= 10:
            raise ValueError(f"gather must be seconds in 0..10, got {gather!r}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        if not is_int(maxsize) or maxsize < 1:
            raise ValueError(f"maxsize must be an int >= 1, got {maxsize!r}")
        if kinds is not None and not isinstance(kinds, tuple):
            kinds = (kinds,)
        sub = Subscription(self, callback, maxsize, kinds, float(gather))
        with self._lock:
            self._subs = self._subs + (sub,)
        return sub

    def unsubscribe(self, sub: Subscription) -> bool:
        """Remove ``sub`` without waiting for it (its dispatcher, if any, drains what is
        buffered and ends on its own); False if it was not subscribed."""
        with self._lock:
            present = sub in self._subs
            if present:
                self._subs = tuple(s for s in self._subs if s is not sub)
        sub._mark_closed()
        return present

    def publish(self, event: Event) -> None:
        """Buffer ``event`` for every subscriber, in subscription order; never waits for
        a reader and never calls subscriber code."""
        if not isinstance(event, Event):
            raise TypeError(f"event must be a telemetry Event, not {type(event).__name__}")
        subs = self._subs  # copy-on-write tuple: no lock held while delivering
        with self._lock:
            self._published += 1
        for sub in subs:
            sub._deliver(event)

    def publish_many(self, events: list[Event]) -> None:
        """:meth:`publish` for each event, in order, with one wake-up of each reader."""
        for event in events:
            if not isinstance(event, Event):
                raise TypeError(f"event must be a telemetry Event, not {type(event).__name__}")
        if not events:
            return
        subs = self._subs
        with self._lock:
            self._published += len(events)
        for sub in subs:
            sub._deliver_many(events)

    @property
    def published(self) -> int:
        return self._published

    @property
    def subscribers(self) -> int:
        return len(self._subs)


# --------------------------------------------------------------------------- facade


class Telemetry:
    """Per-device stats, totals and the event bus of one miner."""

    def __init__(self, clock: Clock = time.monotonic, bus: EventBus | None = None) -> None:
        self.clock = clock
        self.bus = bus if bus is not None else EventBus()
        self.started = clock()
        self.total = DeviceStats("total", kind="total", clock=clock)
        self._devices: dict[str, DeviceStats] = {}
        self._lock = threading.Lock()

    # devices ------------------------------------------------------------------

    def register_device(self, name: str, kind: str = "cpu", impl: str = "",
                        enabled: bool = True) -> DeviceStats:
        """Add a device (or update kind/impl/enabled of a known one) and return its stats."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        with self._lock:
            stats = self._devices.get(name)
            if stats is None:
                stats = DeviceStats(name, kind=kind, impl=impl, enabled=enabled,
                                    clock=self.clock)
                self._devices[name] = stats
                return stats
        with stats._lock:
            stats.kind, stats.impl, stats.enabled = kind, impl, enabled
        return stats

    def device(self, name: str) -> DeviceStats:
        """Stats of ``name``; an unknown device is registered with kind "unknown"."""
        stats = self._devices.get(name)
        if stats is None:
            with self._lock:
                stats = self._devices.get(name)
                if stats is None:
                    log.debug("telemetry: auto-registering device %r", name)
                    stats = DeviceStats(name, kind="unknown", clock=self.clock)
                    self._devices[name] = stats
        return stats

    def devices(self) -> list[DeviceStats]:
        with self._lock:
            return list(self._devices.values())

    def set_device_enabled(self, name: str, enabled: bool, detail: str = "") -> None:
        self.device(name).set_enabled(enabled)
        self.bus.publish(DeviceEvent(name, "enabled" if enabled else "disabled", detail))

    # recording ----------------------------------------------------------------

    def record_batch(self, device: str, hashes: int, seconds_busy: float, batch_size: int,
                     latency_s: float, batches: int = 1) -> None:
        """One call per finished batch of ``device`` (or per reading of a native worker's
        counters: ``batches`` finished since the last one)."""
        now = self.clock()
        self.device(device).record_batch(hashes, seconds_busy, batch_size, latency_s, now,
                                         batches)
        self.total.record_batch(hashes, 0.0, batch_size, latency_s, now, batches)

    def record_share_found(self, device: str, job_id: str, nonce: int,
                           difficulty: float) -> None:
        """A nonce passed the re-check and is being submitted."""
        self.record_shares_found([(device, job_id, nonce, difficulty)])

    def record_shares_found(self, found: list[tuple[str, str, int, float]]) -> None:
        """:meth:`record_share_found` for each ``(device, job_id, nonce, difficulty)``,
        with one hand-over to the subscribers for all of them."""
        events: list[Event] = []
        for device, job_id, nonce, difficulty in found:
            self.device(device).record_share_found(difficulty)
            self.total.record_share_found(difficulty)
            events.append(ShareEvent(device, job_id, nonce, difficulty, None, None))
        self.bus.publish_many(events)

    def record_share_result(self, device: str, job_id: str, nonce: int, difficulty: float,
                            accepted: bool, reason: str | None = None) -> None:
        """The pool's answer to a submitted share."""
        self.record_share_results([(device, job_id, nonce, difficulty, accepted, reason)])

    def record_share_results(self, results: list[tuple[str, str, int, float, bool, str | None]]) -> None:
        """Many answers at once, each ``(device, job_id, nonce, difficulty, accepted,
        reason)``: the same counts and events as :meth:`record_share_result` each, with
        one hand-over to the subscribers for all of them (a flood is thousands a second)."""
        events: list[Event] = []
        for device, job_id, nonce, difficulty, accepted, reason in results:
            self.device(device).record_share_result(accepted, reason)
            self.total.record_share_result(accepted, reason)
            events.append(ShareEvent(device, job_id, nonce, difficulty, bool(accepted), reason))
        self.bus.publish_many(events)

    def record_stale(self, device: str, job_id: str = "", nonce: int = 0,
                     difficulty: float = 0.0, *, refused: bool = False) -> None:
        """A share found for a job that is no longer valid: not submitted, or (``refused``)
        submitted and refused by the pool as stale."""
        self.device(device).record_stale(refused=refused)
        self.total.record_stale(refused=refused)
        self.bus.publish(ShareEvent(device, job_id, nonce, difficulty, False, "stale"))

    def record_stale_count(self, device: str, n: int, *, unchecked: bool = True) -> None:
        """``n`` candidates found for jobs that were already gone (``unchecked``), or shares
        found that were never sent, counted in one number (no event each -- in a flood
        there are thousands a second)."""
        if n > 0:
            self.device(device).record_stale(n, unchecked=unchecked)
            self.total.record_stale(n, unchecked=unchecked)

    def record_candidates(self, device: str, n: int) -> None:
        """``n`` candidates of ``device`` reached the result path (the ledger's total)."""
        if n > 0:
            self.device(device).record_candidates(n)
            self.total.record_candidates(n)

    def record_rules_dropped(self, device: str, n: int = 1) -> None:
        """A candidate met the target it was scanned with but not the pool's rules now (a
        higher difficulty or a narrower version mask came meanwhile): not a share."""
        self.device(device).record_rules_dropped(n)
        self.total.record_rules_dropped(n)

    def record_duplicate(self, device: str, n: int = 1) -> None:
        """A share already submitted was found again and suppressed."""
        self.device(device).record_duplicate(n)
        self.total.record_duplicate(n)

    def record_hw_error(self, device: str, n: int = 1, detail: str = "") -> None:
        """A device result failed the CPU re-check."""
        self.device(device).record_hw_error(n)
        self.total.record_hw_error(n)
        self.bus.publish(DeviceEvent(device, "hw_error", detail))

    def job(self, job_id: str, clean: bool) -> None:
        self.bus.publish(JobEvent(job_id, clean))

    def log(self, level: str | int, message: str) -> None:
        name = logging.getLevelName(level) if isinstance(level, int) else level
        self.bus.publish(LogEvent(str(name), message))

    # reading ------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], Any] | None = None, maxsize: int = 1000,
                  kinds: type | tuple[type, ...] | None = None, gather: float = 0.0) -> Subscription:
        return self.bus.subscribe(callback, maxsize, kinds, gather)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready summary with a ``devices`` list (registration order)."""
        now = self.clock()
        total = self.total.to_dict(now)
        return {
            "elapsed_s": now - self.started,
            "hashes": total["hashes"],
            "hashrate": total["hashrate"],
            "hashrate_avg": total["hashrate_avg"],
            "rates": total["rates"],
            "found": total["found"],
            "accepted": total["accepted"],
            "rejected": total["rejected"],
            "rejected_reasons": total["rejected_reasons"],
            "stale": total["stale"],
            "stale_dropped": total["stale_dropped"],
            "rejected_stale": total["rejected_stale"],
            "candidates": total["candidates"],
            "stale_unchecked": total["stale_unchecked"],
            "rules_dropped": total["rules_dropped"],
            "unsent": total["unsent"],
            "duplicates_suppressed": total["duplicates_suppressed"],
            "hw_errors": total["hw_errors"],
            "best_share_diff": total["best_share_diff"],
            "devices": [d.to_dict(now) for d in self.devices()],
        }
