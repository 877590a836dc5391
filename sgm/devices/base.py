"""The device interface: one worker thread per device, in one of two shapes.

* :class:`SyncDevice` -- scan a batch and return (``run_batch``): the shape of a CPU core.
  The base loop pulls a batch, runs it, hands back what an abort left unscanned and
  reports the candidates.
* :class:`QueuedDevice` -- ``submit(batch)`` / ``poll(timeout)`` / ``flush()``: the shape
  of a GPU, an FPGA or a networked ASIC, which hold several batches at once.  The base
  loop keeps ``depth`` batches submitted, folds finished ones in, and on a clean job,
  a switch-off or a stop flushes the device and hands back what it held.

Both loops own give-back, staleness and enable/disable; a device implements only the
hashing.  The CPU device (:mod:`sgm.devices.cpu`) is the synchronous shape with its whole
loop in native code (no GIL in steady state).  Every device's candidates go into the
scheduler's candidate buffer; the collector thread re-checks and submits them.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from sgm._native import AbortFlag
from sgm.scheduler import BatchSizer, Scheduler
from sgm.work import Batch

log = logging.getLogger(__name__)

#: A batch stops early once it has this many candidates (the unscanned rest goes back to
#: the queue): at absurdly easy targets a batch stays small in memory and quick to re-check.
MAX_CANDIDATES_PER_BATCH = 4096


@dataclass
class BatchResult:
    scanned: int          # nonces fully examined from the batch start
    nonces: list[int]     # candidates found (re-checked by the scheduler's collector)


#: Niceness of device worker threads: hashing yields the CPU to the network and control
#: threads at once.  Safe because a hashing thread holds nothing another thread needs: the
#: CPU workers hash without the GIL (see sgm.devices.cpu).
WORKER_NICE = 19


class Device(ABC):
    """What every device shares: name, kernel, enable/disable, lifecycle, telemetry."""

    kind: str = "unknown"
    #: whether the worker thread runs at WORKER_NICE (a thread that mostly sleeps waiting
    #: for an accelerator keeps normal priority: it must wake at once to keep it fed)
    nice_worker: bool = True

    def __init__(self, name: str, impl: str, granule: int = 4096) -> None:
        self.name = name
        self.impl = impl
        self.granule = granule
        self.abort = AbortFlag()
        self.score = 0.0                  # measured hashes/s at start-up
        self.sizer: BatchSizer | None = None
        self.index = -1                   # the scheduler's number for this device
        self._scheduler: Scheduler | None = None
        self._thread: threading.Thread | None = None
        self._enabled = threading.Event()
        self._enabled.set()
        self._terminate = False
        self._idle = threading.Event()    # set while the worker is not hashing
        self._idle.set()
        #: (job generation, perf_counter) of the batch this device started last
        self._last_batch_start: tuple[int, float] = (0, 0.0)
        #: why the device failed for good (a lost GPU, a dead link): it stays switched off
        self.failure: str | None = None
        self.host_cpu_s = 0.0             # CPU time of the worker thread (updated as it runs)
        self.host_wall_s = 0.0            # its wall time
        self._cpu0 = self._wall0 = 0.0

    def calibrate(self, seconds: float = 0.05) -> float:
        """Measure this device's speed (hashes/s) on a throw-away batch."""
        return 0.0

    # ------------------------------------------------------------ lifecycle
    def start(self, scheduler: Scheduler) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._scheduler = scheduler
        if self.score <= 0:
            self.score = self.calibrate()
        self.sizer = BatchSizer(scheduler.batch_time, self.score or 1e6, self.granule)
        scheduler.register_abort_flag(self.abort)
        scheduler.telemetry.register_device(self.name, kind=self.kind, impl=self.impl,
                                            enabled=self.enabled)
        self.index = scheduler.register_device(self)
        self._terminate = False
        self._attach(scheduler)
        self._thread = threading.Thread(target=self._loop, name=f"sgm-{self.name}", daemon=True)
        self._thread.start()
        if self.failure is not None:      # failed already (while calibrating)
            scheduler.telemetry.set_device_enabled(self.name, False, self.failure)

    def _attach(self, scheduler: Scheduler) -> None:  # noqa: B027 - an optional hook
        """Called by start() before the worker thread runs (native devices build their
        worker here)."""

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker thread (unscanned work goes back to the queue, candidates found
        are processed before this returns)."""
        self._terminate = True
        self.abort.set()
        self._enabled.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # kept: forgetting it would let a restart run a second worker beside it
                log.warning("%s: worker thread did not stop within %.0f s", self.name, timeout)
                return
            self._thread = None
        self._detach()
        if self._scheduler is not None:
            self._scheduler.unregister_abort_flag(self.abort)
            if self.index >= 0:
                self._scheduler.unregister_device(self.index, timeout)
                self.index = -1

    def _detach(self) -> None:  # noqa: B027 - an optional hook
        """Called by stop() after the worker thread ended."""

    @property
    def enabled(self) -> bool:
        return self.failure is None and self._enabled.is_set()

    def set_enabled(self, enabled: bool, detail: str = "") -> None:
        """Stop or resume hashing while mining; the other devices keep going.  A device
        that failed for good (:meth:`fail`) stays off."""
        if enabled and self.failure is not None:
            log.warning("%s stays stopped after its error: %s", self.name, self.failure)
            return
        if enabled == self.enabled:
            return
        if enabled:
            self._enabled.set()
        else:
            self._enabled.clear()
            self.abort.set()
        if self._scheduler is not None:
            self._scheduler.telemetry.set_device_enabled(self.name, enabled, detail)
        log.info("%s %s", self.name, "started" if enabled else "stopped")

    def fail(self, reason: str) -> None:
        """The device is lost (one error log line): it is switched off for good, its work
        goes back to the queue, and the other devices mine on."""
        log.error("%s: %s; the device is stopped and its work goes back to the queue",
                  self.name, reason)
        self.set_enabled(False, reason)
        self.failure = reason             # from now on it reads as disabled for good

    @property
    def host_cpu_share(self) -> float:
        """CPU time of the worker thread / its wall time (0..1: the share of one core)."""
        return self.host_cpu_s / self.host_wall_s if self.host_wall_s > 0 else 0.0

    def _account(self) -> None:
        self.host_cpu_s = time.thread_time() - self._cpu0
        self.host_wall_s = time.perf_counter() - self._wall0

    @property
    def hashing(self) -> bool:
        return not self._idle.is_set()

    @property
    def last_batch_start(self) -> tuple[int, float]:
        """(job generation, monotonic seconds) of the batch this device started last."""
        return self._last_batch_start

    # ------------------------------------------------------------ the collector's calls
    def on_results(self, hw_errors: int) -> None:
        """The collector re-checked candidates of this device: hardware errors shrink its
        batches, clean results let them grow back."""
        if self.sizer is None:
            return
        if hw_errors:
            self.sizer.hw_error()
        else:
            self.sizer.clean_batch()

    def sample(self) -> None:  # noqa: B027 - an optional hook
        """Called by the collector about every 0.25 s (native devices fold their counters
        into telemetry here; Python devices report per batch)."""

    # ------------------------------------------------------------ the worker thread
    def _loop(self) -> None:
        if self.nice_worker:
            _lower_thread_priority()
        self._cpu0, self._wall0 = time.thread_time(), time.perf_counter()
        try:
            while not self._terminate:
                try:
                    self._work()
                except Exception:  # noqa: BLE001 - a failing device must not take the miner down
                    log.exception("%s: unexpected error; the device is stopped", self.name)
                    self._idle.set()
                    self.set_enabled(False)
        finally:
            self._account()
            self._thread_ended()

    def _thread_ended(self) -> None:  # noqa: B027 - an optional hook
        """Called on the worker thread as it ends (release what the device holds)."""

    @abstractmethod
    def _work(self) -> None:
        """Run until the device is terminated or must wait (the base loop calls it again)."""

    def _finish_batch(self, batch: Batch, result: BatchResult, busy: float) -> None:
        """Give back what was not scanned, fold the speed in, report the candidates."""
        sched = self._scheduler
        assert sched is not None and self.sizer is not None
        if not 0 <= result.scanned <= batch.count:
            sched.give_back(batch, 0)
            raise RuntimeError(f"{self.name} reported {result.scanned} nonces scanned "
                               f"of a {batch.count}-nonce batch")
        if result.scanned < batch.count:
            sched.give_back(batch, result.scanned)
        self.sizer.observe(result.scanned, busy)
        sched.telemetry.record_batch(self.name, result.scanned, busy, batch.count,
                                     time.perf_counter() - batch.pulled_at)
        if result.nonces:
            sched.report(self.index, batch, result.nonces)


class SyncDevice(Device):
    """A device that scans one batch at a time and returns (``run_batch``)."""

    @abstractmethod
    def run_batch(self, batch: Batch) -> BatchResult:
        """Hash one batch; stop early (reporting progress) when self.abort is raised."""

    def _next_batch(self) -> Batch | None:
        """The batch to run next (a device that pipelines may have pulled it already)."""
        assert self._scheduler is not None and self.sizer is not None
        return self._scheduler.pull(self.sizer.size())

    def _on_disabled(self) -> None:
        """Called on the worker thread while the device is disabled: hand back any work
        held ahead of time."""

    def _work(self) -> None:
        """One pull -> run -> report step (or a short wait while disabled / without work)."""
        sched = self._scheduler
        assert sched is not None and self.sizer is not None
        if not self._enabled.is_set():
            self._on_disabled()
            self._enabled.wait(0.25)
            return
        self.abort.clear()
        batch = self._next_batch()
        if batch is None:
            return
        if self._terminate or not self._enabled.is_set():
            sched.give_back(batch, 0)
            return
        self._idle.clear()
        t0 = time.perf_counter()
        self._last_batch_start = (batch.generation, time.monotonic())
        try:
            result = self.run_batch(batch)
        except BaseException:
            sched.give_back(batch, 0)  # nothing of it counts: hand it all back
            raise
        finally:
            self._idle.set()
        self._finish_batch(batch, result, time.perf_counter() - t0)


class QueuedDevice(Device):
    """A device that holds several batches at once.

    Implement ``submit`` (start hashing a batch), ``poll`` (batches that finished, in
    any order, waiting at most ``timeout``) and ``flush`` (drop everything held and say how
    far each batch got).  ``poll`` returns early when the abort flag is raised; a batch
    cut short by the abort flag is reported through ``flush``.
    """

    #: batches kept submitted: enough that a pause of any Python thread never idles it
    depth: int = 3

    @abstractmethod
    def submit(self, batch: Batch) -> None:
        """Start hashing ``batch`` (queued behind the batches already submitted)."""

    @abstractmethod
    def poll(self, timeout: float) -> list[tuple[Batch, BatchResult]]:
        """Batches finished since the last poll (waits up to ``timeout`` for one)."""

    @abstractmethod
    def flush(self) -> list[tuple[Batch, BatchResult]]:
        """Drop every batch held: each with how far it got (its candidates below that)."""

    def _work(self) -> None:
        sched = self._scheduler
        assert sched is not None and self.sizer is not None
        held: dict[int, tuple[Batch, float]] = {}      # id(batch) -> (batch, submitted at)
        try:
            while not self._terminate:
                if not self._enabled.is_set():
                    self._flush_held(held)
                    self._idle.set()
                    self._enabled.wait(0.25)
                    continue
                if self.abort.is_set():
                    # a clean job, or the pool was lost: what is held is stale
                    self.abort.clear()
                    self._flush_held(held)
                while len(held) < self.depth and not self.abort.is_set():
                    batch = sched.pull(self.sizer.size(), timeout=0.0 if held else 0.25)
                    if batch is None:
                        break
                    if self._terminate or not self._enabled.is_set():
                        sched.give_back(batch, 0)
                        break
                    self.submit(batch)
                    held[id(batch)] = (batch, time.perf_counter())
                    self._last_batch_start = (batch.generation, time.monotonic())
                if not held:
                    self._idle.set()
                    continue
                self._idle.clear()
                for batch, result in self.poll(0.25):
                    entry = held.pop(id(batch), None)
                    if entry is None:
                        continue
                    self._finish_batch(batch, result, time.perf_counter() - entry[1])
        finally:
            self._flush_held(held)
            self._idle.set()

    def _flush_held(self, held: dict[int, tuple[Batch, float]]) -> None:
        if not held:
            return
        for batch, result in self.flush():
            entry = held.pop(id(batch), None)
            if entry is not None:
                self._finish_batch(batch, result, time.perf_counter() - entry[1])
        for batch, _ in held.values():       # never started: all of it goes back
            if self._scheduler is not None:
                self._scheduler.give_back(batch, 0)
        held.clear()


def _lower_thread_priority() -> None:
    """Make the calling thread (only it: Linux applies PRIO_PROCESS to a thread id) nice.
    Elsewhere a thread id is no process id, so nothing is changed there."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), WORKER_NICE))
    except OSError as exc:  # not permitted or not supported: mining works, just less politely
        log.debug("could not lower worker priority: %s", exc)
