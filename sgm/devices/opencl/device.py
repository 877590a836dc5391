"""The scheduler-facing OpenCL device: the queued device shape over an OpenCLScanner."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from sgm._native import AbortFlag
from sgm.devices.base import MAX_CANDIDATES_PER_BATCH, BatchResult, QueuedDevice
from sgm.devices.opencl.program import KERNEL_FILE
from sgm.devices.opencl.runtime import opencl_errors
from sgm.devices.opencl.scanner import OpenCLScanner, ScanJob
from sgm.work import Batch

log = logging.getLogger(__name__)


class _WakingAbortFlag(AbortFlag):
    """An AbortFlag that also wakes the host thread sleeping on ``wake``."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self.wake = wake

    def set(self) -> None:
        super().set()
        self.wake.set()


class OpenCLDevice(QueuedDevice):
    """One OpenCL device under the scheduler, in the queued shape: the base loop keeps
    ``depth`` batches submitted; their launches go into one in-order queue, ``depth``
    launches in flight at all times (within and across batches), so the device never waits
    for the host, and a pause of the host thread shorter than those launches costs nothing.
    """

    kind = "opencl"
    nice_worker = False   # sleeps on events; must wake at once to keep the device fed
    depth = 2             # batches held (each of many launches)

    def __init__(self, name: str, dev: Any, *, description: str = "",
                 scanner: OpenCLScanner | None = None, **scanner_options: Any) -> None:
        self.scanner = scanner or OpenCLScanner(dev, **scanner_options)
        super().__init__(name, KERNEL_FILE, granule=self.scanner.step)
        self.description = description or str(dev.name).strip()
        self.device_type = self.scanner.device_type      # "GPU", "CPU", ...
        self.abort = _WakingAbortFlag(self.scanner.wake)
        self._jobs: deque[ScanJob] = deque()      # submitted batches, oldest first

    # ------------------------------------------------------------ lifecycle
    def calibrate(self, seconds: float = 0.05) -> float:
        try:
            return self.scanner.calibrate(seconds)
        except opencl_errors() as exc:
            self._fail(exc)
            return 1.0

    def _thread_ended(self) -> None:
        if self.failure is None:   # a lost device may not even finish its queue
            self.scanner.close()

    # ------------------------------------------------------------ the queued shape
    def submit(self, batch: Batch) -> None:
        job = self.scanner.job(batch.work.midstate, batch.work.tail, batch.start,
                               batch.count, batch.target, tag=batch)
        self._jobs.append(job)
        self._fill()

    def _fill(self) -> None:
        """Launches of the submitted batches, in order, until ``depth`` are in flight."""
        for job in self._jobs:
            self.scanner.fill(job)
            if len(self.scanner.inflight) >= self.scanner.depth:
                break

    def poll(self, timeout: float) -> list[tuple[Batch, BatchResult]]:
        sc = self.scanner
        finished: list[tuple[Batch, BatchResult]] = []
        deadline = time.perf_counter() + timeout
        try:
            while self._jobs and not finished:
                self._fill()
                if not sc.inflight:
                    break
                head = sc.inflight[0]
                if not sc.wait(head, lambda: self.abort.is_set()
                               or time.perf_counter() > deadline):
                    break
                sc.collect(head)
                self._fill()
                job = self._jobs[0]
                if job.done >= job.count or len(job.nonces) >= MAX_CANDIDATES_PER_BATCH:
                    self._jobs.popleft()
                    sc.drop(job)
                    finished.append((job.tag, self._result(job)))
        except opencl_errors() as exc:
            self._fail(exc)
        self._account()
        return finished

    def flush(self) -> list[tuple[Batch, BatchResult]]:
        out = []
        while self._jobs:
            job = self._jobs.popleft()
            if self.failure is None:
                try:
                    self.scanner.harvest(job)    # launches already done count as scanned
                except opencl_errors() as exc:
                    self._fail(exc)
            self.scanner.drop(job)
            out.append((job.tag, self._result(job)))
        return out

    @staticmethod
    def _result(job: ScanJob) -> BatchResult:
        # the kernel only pre-filters; a nonce it claimed that is no candidate at all goes
        # to the collector too, whose re-check counts it as this device's hardware error
        return BatchResult(job.done, sorted(job.nonces + job.bad))

    def _fail(self, exc: BaseException) -> None:
        """An OpenCL error: this device stops for good (one log line); the others mine on."""
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.scanner.abandon()
        self.fail(f"OpenCL error: {first}")
