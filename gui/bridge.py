"""The one object between the window and the mining engine.

The engine runs in its own threads exactly as under the CLI; the window lives on the GUI
thread.  :class:`EngineBridge` keeps them apart:

* User actions (start, stop, a device on or off, a new pool list) become ``Miner`` calls on
  one background worker thread, in the order they were asked for; ``Miner.start`` calibrates
  every device and can take seconds, so it never runs on the GUI thread.  Outcomes come
  back as signals (``started`` / ``failed(str)`` / ``stopped`` / ``message(str)``).
* One consumer thread drains a queue subscription of the telemetry bus in batches and
  emits them as plain data (``events(list)``), and every :data:`SNAPSHOT_INTERVAL` seconds
  takes the authoritative ``Miner.summary()`` and ``Miner.pool_status()`` (``snapshot(dict)``).
  The signals are emitted from that thread; Qt queues them to receivers on the GUI thread.

Counters shown to the user come from the snapshot, never from counting events, so a flood
that overflows the event buffer cannot make them wrong.  Only chart samples may be lost:
the bus drops its oldest events when the buffer is full, and the bridge forwards at most
:data:`MAX_SHARE_SAMPLES` share results per batch; both are counted (``dropped``).
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from sgm.api import DeviceEvent, Event, JobEvent, LogEvent, Miner, MinerConfig, PoolConfig, ShareEvent, Subscription

log = logging.getLogger("sgm.gui.bridge")

#: Seconds between snapshots (summary + pool status) sent to the window.
SNAPSHOT_INTERVAL = 0.5
#: Seconds the consumer sleeps between two drains (each drain is emitted as one batch).
EVENT_INTERVAL = 0.1
#: Share results forwarded per batch at most (chart samples); the rest are counted dropped.
MAX_SHARE_SAMPLES = 50
#: Events the telemetry subscription buffers (oldest dropped beyond that, and counted).
BUFFER_EVENTS = 20_000
#: The "current" per-device rate is the hashes done over at least this many seconds: a
#: device that did nothing that long (no job, stalled) reads 0.  Long enough that one slow
#: batch on a loaded machine does not flicker a working device to 0; a device switched off
#: reads 0 at once (its flag, not its hashes, says so).
RATE_WINDOW = 2.0
#: Seconds Miner.stop() may wait for shares in flight and for its threads.
STOP_TIMEOUT = 5.0


def instant_rates(history: collections.deque[tuple[float, dict[str, int]]]) -> dict[str, float]:
    """Hashes per second of each device between the oldest and newest sample of
    ``history`` ((monotonic time, {device: hashes})): unlike the engine's decaying averages
    it reads 0 one window after a device stops, which is what a user toggling it expects."""
    if len(history) < 2:
        return {name: 0.0 for name in (history[-1][1] if history else {})}
    (t0, first), (t1, last) = history[0], history[-1]
    span = max(1e-6, t1 - t0)
    return {name: max(0, h - first.get(name, h)) / span for name, h in last.items()}


class EngineBridge(QObject):
    """Drive one ``Miner`` from the GUI without ever blocking the GUI thread.

    Create it on the GUI thread.  ``miner_factory`` builds the Miner from a config (tests
    may wrap it to look at the Miner they get).
    """

    #: mining started (devices calibrated, pool side up)
    started = Signal()
    #: starting failed, or the engine stopped on its own error: the reason, for the user
    failed = Signal(str)
    #: mining stopped (Miner.stop returned, last snapshot already emitted)
    stopped = Signal()
    #: a batch of telemetry events (list of sgm.telemetry events, oldest first)
    events = Signal(object)
    #: {"t", "summary", "pools", "rates_now", "total_now", "dropped", "running",
    #: "finished"}: see :meth:`_snapshot`
    snapshot = Signal(object)
    #: a user action could not be done (e.g. a device that no longer exists)
    message = Signal(str)

    def __init__(self, parent: QObject | None = None,
                 miner_factory: Callable[[MinerConfig], Miner] = Miner) -> None:
        super().__init__(parent)
        self._factory = miner_factory
        # one worker: start, toggles, restarts and stop run in the order they were asked for
        self._actions = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="gui-engine")
        self._lock = threading.Lock()
        self._miner: Miner | None = None
        self._sub: Subscription | None = None
        self._consumer: threading.Thread | None = None
        self._consumer_stop = threading.Event()
        self._history: collections.deque[tuple[float, dict[str, int]]] = collections.deque()
        self._history_lock = threading.Lock()
        #: devices seen switched off: their hash count then (rate 0 until it grows again)
        self._off_at: dict[str, int] = {}
        self._closed = False
        #: share results not forwarded to the charts (bridge sampling), all sessions
        self.samples_dropped = 0
        self._samples_in_batch = 0     # share samples in the batch being gathered
        #: events the telemetry buffer discarded (full), all finished sessions
        self._bus_dropped_before = 0
        self._starts_pending = 0      # start() calls not yet done on the worker
        self._session_running = False  # see running
        #: the latest snapshot emitted (the final one once stopped): what the window may
        #: read instead of calling the engine on the GUI thread
        self.last_snapshot: dict[str, Any] | None = None

    # ------------------------------------------------------------ state (any thread)
    @property
    def miner(self) -> Miner | None:
        """The current Miner (None before the first start); for reading only."""
        return self._miner

    @property
    def running(self) -> bool:
        """A session is mining: the bridge's own flag, set on the worker once Miner.start
        returned and cleared when a stop begins (the GUI thread never asks the engine)."""
        return self._session_running

    @property
    def busy(self) -> bool:
        """Mining, or a start asked for and not yet done (started or failed)."""
        with self._lock:
            return self._starts_pending > 0 or self.running

    def _start_done(self) -> None:
        with self._lock:
            self._starts_pending -= 1

    @property
    def dropped(self) -> int:
        """Chart samples lost so far: overflowed from the bus buffer or sampled out."""
        sub = self._sub
        return self._bus_dropped_before + (sub.dropped if sub is not None else 0) \
            + self.samples_dropped

    # ------------------------------------------------------------ user actions (GUI thread)
    def start(self, config: MinerConfig, disabled: list[str] | tuple[str, ...] = ()) -> None:
        """Build and start a Miner for ``config`` in the background; ``disabled`` names
        devices to start switched off.  Emits started or failed(reason)."""
        with self._lock:
            self._starts_pending += 1
        self._submit(self._do_start, config, tuple(disabled))

    def stop(self) -> None:
        """Stop mining in the background (consumer thread first, then the Miner); emits
        stopped once done, also when nothing was running."""
        self._submit(self._do_stop)

    def restart(self, config: MinerConfig, disabled: list[str] | tuple[str, ...] = ()) -> None:
        """Stop the current session (if any) and start one with ``config`` (new pools)."""
        with self._lock:
            self._starts_pending += 1
        self._submit(self._do_stop)
        self._submit(self._do_start, config, tuple(disabled))

    def set_device_enabled(self, name: str, enabled: bool) -> None:
        """Switch one device on or off; the snapshot shows when the engine has done it."""
        self._submit(self._do_toggle, name, bool(enabled))

    def add_pool(self, pool: PoolConfig) -> None:
        """Append a failover pool to the running session (no restart: mining, counters and
        uptime go on); the next snapshot lists it."""
        self._submit(self._do_add_pool, pool)

    def set_all_enabled(self, enabled: bool) -> None:
        """Switch every device of the running session on or off."""
        self._submit(self._do_toggle_all, bool(enabled))

    def close(self) -> None:
        """Accept no more actions; the worker thread ends once what was asked is done
        (never waited for here: the window calls this after ``stopped``, or after giving
        up on a stop that hangs)."""
        self._closed = True
        self._actions.shutdown(wait=False)

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        if self._closed:
            log.debug("bridge closed: %s ignored", fn.__name__)
            if fn == self._do_stop:     # nothing runs any more: say so, nobody waits
                self._emit(self.stopped)
            elif fn == self._do_start:
                self._start_done()
            return
        self._actions.submit(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:   # noqa: BLE001 - reported to the user, never lost
            log.exception("engine action %s failed", fn.__name__)
            self._emit(self.message, f"{fn.__name__.removeprefix('_do_')}: {exc}")

    def _emit(self, signal: Any, *args: Any) -> None:
        """Emit from a worker thread; a window already gone (C++ object deleted) is fine."""
        try:
            signal.emit(*args)
        except RuntimeError:
            log.debug("bridge signal after the window went away", exc_info=True)

    # ------------------------------------------------------------ worker thread
    def _do_start(self, config: MinerConfig, disabled: tuple[str, ...]) -> None:
        if self.running:
            self._start_done()
            self._emit(self.message, "already mining")
            return
        outcome = self._start(config, disabled)   # the pending start ends before anyone
        self._start_done()                          # hears of it (busy is exact in slots)
        if outcome is None:
            self._emit(self.started)
        else:
            self._emit(self.failed, outcome)

    def _start(self, config: MinerConfig, disabled: tuple[str, ...]) -> str | None:
        """Build, subscribe, start, run the consumer; None when mining, else the reason."""
        try:
            miner = self._factory(dataclasses.replace(config, pools=list(config.pools)))
            # subscribe before start: the first pool connect and job are seen too
            sub = miner.subscribe(maxsize=BUFFER_EVENTS)
        except Exception as exc:   # noqa: BLE001 - any refusal is the user's message
            log.error("mining could not start: %s", exc)
            return str(exc)
        try:
            miner.start(disabled=disabled)   # devices switched off never hash, not even briefly
        except Exception as exc:   # noqa: BLE001 - start() undid what it started
            sub.close()
            log.error("mining could not start: %s", exc)
            return str(exc)
        with self._lock:
            self._miner, self._sub = miner, sub
            self._session_running = True
            with self._history_lock:
                self._history.clear()
            self._off_at.clear()
            self._consumer_stop.clear()
            self._consumer = threading.Thread(target=self._consume, args=(miner, sub),
                                              name="gui-telemetry", daemon=True)
            self._consumer.start()
        log.info("mining started: %d device(s)", len(miner.devices))
        return None

    def _do_stop(self) -> None:
        with self._lock:
            miner, sub, consumer = self._miner, self._sub, self._consumer
            self._consumer = None
            self._session_running = False
        if consumer is not None:          # 1. the consumer thread (no more snapshots)
            self._consumer_stop.set()
            consumer.join(STOP_TIMEOUT)
        self._samples_in_batch = 0
        if miner is not None and miner.running:
            miner.stop(STOP_TIMEOUT)      # 2. the engine: devices, shares in flight, network
        if miner is not None and sub is not None:
            # the last verdicts and the final, authoritative counters
            rest = self._filter(sub.drain())
            if rest:
                self._emit(self.events, rest)
            self._emit_snapshot(self._snapshot(miner, sub))
            sub.close()
            with self._lock:
                self._bus_dropped_before += sub.dropped
                self._sub = None
        self._emit(self.stopped)

    def _do_toggle(self, name: str, enabled: bool) -> None:
        miner = self._miner
        if miner is None or not miner.running:
            self._emit(self.message, f"{name}: not mining")
            return
        try:
            miner.set_device_enabled(name, enabled)
        except KeyError as exc:
            self._emit(self.message, str(exc.args[0]) if exc.args else str(exc))

    def _do_add_pool(self, pool: PoolConfig) -> None:
        miner = self._miner
        if miner is None or not miner.running:
            return
        miner.add_pool(pool.url, pool.user, pool.password)

    def _do_toggle_all(self, enabled: bool) -> None:
        miner = self._miner
        if miner is None or not miner.running:
            return
        for device in list(miner.devices):
            miner.set_device_enabled(device.name, enabled)

    # ------------------------------------------------------------ consumer thread
    def _filter(self, batch: list[Event]) -> list[Event]:
        """What the window needs of a batch: every log, device and job event; share
        results (answered or stale) up to MAX_SHARE_SAMPLES per emitted batch; found-only
        shares skipped (their verdict follows)."""
        out: list[Event] = []
        for ev in batch:
            if isinstance(ev, ShareEvent):
                if ev.accepted is None:
                    continue
                if self._samples_in_batch >= MAX_SHARE_SAMPLES:
                    self.samples_dropped += 1
                    continue
                self._samples_in_batch += 1
                out.append(ev)
            elif isinstance(ev, (LogEvent, DeviceEvent, JobEvent)):
                out.append(ev)
        return out

    def _consume(self, miner: Miner, sub: Subscription) -> None:
        """Every EVENT_INTERVAL: take everything buffered (one drain, however many events
        came: a flood costs one pass, not one wake-up per event) and emit it as one batch;
        every SNAPSHOT_INTERVAL the authoritative snapshot."""
        stop = self._consumer_stop
        last_snap = time.monotonic()
        self._emit_snapshot(self._snapshot(miner, sub))
        while not stop.wait(EVENT_INTERVAL):
            try:
                self._samples_in_batch = 0
                batch = self._filter(sub.drain())
                if batch:
                    self._emit(self.events, batch)
                now = time.monotonic()
                if now - last_snap >= SNAPSHOT_INTERVAL:
                    last_snap = now
                    self._emit_snapshot(self._snapshot(miner, sub))
            except Exception:   # noqa: BLE001 - keep consuming; the user sees the log line
                log.exception("telemetry consumer: unexpected error")
                stop.wait(SNAPSHOT_INTERVAL)

    def _emit_snapshot(self, snap: dict[str, Any]) -> None:
        self.last_snapshot = snap
        self._emit(self.snapshot, snap)

    def _snapshot(self, miner: Miner, sub: Subscription) -> dict[str, Any]:
        """The authoritative state as plain data: ``summary`` (Miner.summary()), ``pools``
        (Miner.pool_status()), ``rates_now`` ({device: H/s over ~RATE_WINDOW}; 0 for a
        device switched off), ``total_now`` (their sum), ``dropped`` (chart samples
        lost), ``running``, ``finished`` (the embedded pool issued all its jobs), ``t``
        (epoch seconds)."""
        summary = miner.summary()
        now = time.monotonic()
        hashes = {d["name"]: int(d["hashes"]) for d in summary["devices"]}
        # the consumer thread and a stop may both get here (a consumer that did not end in
        # time): one at a time
        with self._history_lock:
            hist = self._history
            hist.append((now, hashes))
            while len(hist) > 2 and now - hist[1][0] >= RATE_WINDOW:
                hist.popleft()
            rates = instant_rates(hist)
        off = self._off_at
        for d in summary["devices"]:
            name = d["name"]
            if not d["enabled"]:   # switched off: its batch was aborted, nothing hashes now
                rates[name] = 0.0
                off[name] = int(d["hashes"])
            elif name in off:      # switched on again: 0 until it reported new work
                if int(d["hashes"]) > off[name]:
                    del off[name]
                else:
                    rates[name] = 0.0
        rates_total = sum(rates.values())
        return {
            "t": time.time(),
            "summary": summary,
            "pools": miner.pool_status(),
            "rates_now": rates,
            "total_now": rates_total,
            "dropped": self._bus_dropped_before + sub.dropped + self.samples_dropped,
            "running": miner.running,
            "finished": miner.finished.is_set(),
        }


def pools_config(base: MinerConfig, pools: list[PoolConfig]) -> MinerConfig:
    """``base`` with another pool list ([] = the embedded pool), for a restart."""
    return dataclasses.replace(base, pools=list(pools))
