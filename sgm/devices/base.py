"""The one narrow interface every compute device implements.

A device runs one worker thread that loops pull -> run a batch -> report.  Subclasses
implement only ``run_batch`` (hash one batch, honouring the abort flag) — the CPU kernels
and the OpenCL kernel — and everything else (enable/disable while mining, adaptive batch
sizing, give-back of unscanned work, telemetry) is shared here.  A device that pipelines
(OpenCL: the next batch is pulled and launched before the current one ends) overrides
``_next_batch`` and hands back what it holds in ``_on_disabled``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from sgm._native import AbortFlag
from sgm.scheduler import BatchSizer, Scheduler
from sgm.work import Batch

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    scanned: int          # nonces fully examined from the batch start
    nonces: list[int]     # candidates found (re-checked by the scheduler)


#: Niceness of device worker threads: hashing yields the CPU to the network and control
#: threads at once (a clean job then reaches the devices in about a millisecond).
WORKER_NICE = 19


class Device(ABC):
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
        self._scheduler: Scheduler | None = None
        self._thread: threading.Thread | None = None
        self._enabled = threading.Event()
        self._enabled.set()
        self._terminate = False
        self._idle = threading.Event()    # set while the worker is not hashing
        self._idle.set()
        #: (job generation, perf_counter) of the batch this device started last
        self.last_batch_start: tuple[int, float] = (0, 0.0)

    # ------------------------------------------------------------ the one method
    @abstractmethod
    def run_batch(self, batch: Batch) -> BatchResult:
        """Hash one batch; stop early (reporting progress) when self.abort is raised."""

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
        self._terminate = False
        self._thread = threading.Thread(target=self._loop, name=f"sgm-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker thread (unscanned work goes back to the queue)."""
        self._terminate = True
        self.abort.set()
        self._enabled.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._scheduler is not None:
            self._scheduler.unregister_abort_flag(self.abort)

    @property
    def enabled(self) -> bool:
        return self._enabled.is_set()

    def set_enabled(self, enabled: bool, detail: str = "") -> None:
        """Stop or resume hashing while mining; the other devices keep going."""
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

    @property
    def hashing(self) -> bool:
        return not self._idle.is_set()

    # ------------------------------------------------------------ worker
    def _next_batch(self) -> Batch | None:
        """The batch to run next (a device that pipelines may have pulled it already)."""
        assert self._scheduler is not None and self.sizer is not None
        return self._scheduler.pull(self.sizer.size())

    def _on_disabled(self) -> None:
        """Called on the worker thread while the device is disabled: hand back any work
        held ahead of time."""

    def _loop(self) -> None:
        assert self._scheduler is not None
        if self.nice_worker:
            _lower_thread_priority()
        while not self._terminate:
            try:
                self._iteration()
            except Exception:  # noqa: BLE001 - a failing device must not take the miner down
                log.exception("%s: unexpected error; the device is stopped", self.name)
                self._idle.set()
                self.set_enabled(False)

    def _iteration(self) -> None:
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
        self.last_batch_start = (batch.generation, t0)
        try:
            result = self.run_batch(batch)
        except BaseException:
            sched.give_back(batch, 0)  # nothing of it counts: hand it all back
            raise
        finally:
            self._idle.set()
        busy = time.perf_counter() - t0
        if not 0 <= result.scanned <= batch.count:
            raise RuntimeError(f"{self.name} reported {result.scanned} nonces scanned "
                               f"of a {batch.count}-nonce batch")
        if result.scanned < batch.count:
            sched.give_back(batch, result.scanned)
        self.sizer.observe(result.scanned, busy)
        sched.telemetry.record_batch(self.name, result.scanned, busy, batch.count,
                                     time.perf_counter() - batch.pulled_at)
        if result.nonces:
            if sched.handle_nonces(self.name, batch, result.nonces):
                self.sizer.hw_error()
            else:
                self.sizer.clean_batch()


def _lower_thread_priority() -> None:
    """Make the calling thread (only it: Linux applies PRIO_PROCESS to a thread id) nice."""
    if not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), WORKER_NICE))
    except OSError as exc:  # not permitted or not supported: mining works, just less politely
        log.debug("could not lower worker priority: %s", exc)
