"""CPU devices: one worker thread per core whose hashing loop is native.

The thread calls :meth:`CpuWorker.run`, which releases the GIL and loops pull -> scan ->
push candidates -> give back in C until Python has to decide something (switched off, no
work, a midstate not prepared yet, stop).  In steady state the thread never takes the GIL,
so running it at nice 19 is safe: a starved worker holds nothing the network thread, the
collector or the window needs.
"""
from __future__ import annotations

import threading
import time

from sgm import _native
from sgm._native._worker import RUN_DISABLED, RUN_NEED_WORK, RUN_NO_WORK, RUN_STOPPED, CpuWorker
from sgm.devices.base import MAX_CANDIDATES_PER_BATCH, BatchResult, SyncDevice
from sgm.scheduler import Scheduler
from sgm.work import Batch

_CAL_HEADER = bytes(range(80))

__all__ = ["MAX_CANDIDATES_PER_BATCH", "CpuDevice"]


class CpuDevice(SyncDevice):
    kind = "cpu"

    def __init__(self, index: int, impl: str | None = None) -> None:
        impl = _native.require_implementation(impl)
        super().__init__(f"cpu{index}", impl, granule=4096)
        self.worker: CpuWorker | None = None
        # the counters already folded into telemetry (the collector and readers of
        # ``hashing`` both fold them: one at a time)
        self._seen = (0, 0, 0)
        self._sample_lock = threading.Lock()

    def calibrate(self, seconds: float = 0.05) -> float:
        ms = _native.sha256_midstate(_CAL_HEADER[:64])
        n = 1 << 16
        t0 = time.perf_counter()
        done = 0
        while time.perf_counter() - t0 < seconds:
            done += _native.scan(ms, _CAL_HEADER[64:76], 0, n, 0, impl=self.impl).scanned
        return done / (time.perf_counter() - t0)

    def run_batch(self, batch: Batch) -> BatchResult:
        """Scan one batch on the calling thread (the synchronous shape, for direct use;
        the worker thread runs the native loop instead)."""
        work = batch.work
        res = _native.scan(work.midstate, work.tail, batch.start, batch.count, batch.target,
                           impl=self.impl,
                           abort=self.abort, max_results=MAX_CANDIDATES_PER_BATCH)
        # complete, aborted, or stopped at the candidate cap: `scanned` is exact either way
        return BatchResult(res.scanned, res.nonces)

    # ------------------------------------------------------------ the native loop
    def _attach(self, scheduler: Scheduler) -> None:
        assert self.sizer is not None
        self.worker = CpuWorker(scheduler.queue, scheduler.table, scheduler.candidates,
                                self.index, self.impl, batch_nonces=self.sizer.size(),
                                abort=self.abort)
        self.worker.enabled = self.enabled
        self._seen = (0, 0, 0)

    def _detach(self) -> None:
        if self.worker is not None:
            self.sample()
            self.worker.detach()

    def stop(self, timeout: float = 5.0) -> None:
        if self.worker is not None:
            self.worker.terminate()
        super().stop(timeout)

    def set_enabled(self, enabled: bool, detail: str = "") -> None:
        if self.worker is not None:
            self.worker.enabled = enabled
        super().set_enabled(enabled, detail)

    @property
    def hashing(self) -> bool:
        """Inside a scan now.  Once not, telemetry holds every hash done so far."""
        if self.worker is None:
            return False
        if self.worker.hashing:
            return True
        self.sample()
        return self.worker.hashing

    @property
    def last_batch_start(self) -> tuple[int, float]:
        if self.worker is None:
            return (0, 0.0)
        gen, ns = self.worker.last_batch_start
        return (gen, ns / 1e9)

    def _work(self) -> None:
        worker, sched = self.worker, self._scheduler
        assert worker is not None and sched is not None
        while not self._terminate:
            status = worker.run()                 # the GIL is released in here
            if status == RUN_STOPPED:
                return
            if status == RUN_DISABLED:
                self._enabled.wait(0.25)
                worker.enabled = self._enabled.is_set()
            elif status == RUN_NO_WORK:
                sched.wait_for_work(0.25)
            elif status == RUN_NEED_WORK:
                generation, midstate_id = worker.need
                sched.prepare(generation, midstate_id)

    def sample(self) -> None:
        """Fold the worker's native counters into telemetry and the batch sizer."""
        with self._sample_lock:
            self._sample()

    def _sample(self) -> None:
        worker, sched = self.worker, self._scheduler
        if worker is None or sched is None or self.sizer is None:
            return
        hashes, batches, busy_ns, _cand, _blocks, latency_ns, batch_size = worker.counters()
        seen_h, seen_b, seen_busy = self._seen
        dh, db, dbusy = hashes - seen_h, batches - seen_b, (busy_ns - seen_busy) / 1e9
        if db <= 0 and dh <= 0:
            return
        self._seen = (hashes, batches, busy_ns)
        sched.telemetry.record_batch(self.name, dh, dbusy, batch_size, latency_ns / 1e9,
                                     batches=db)
        # the sizer weights a sample by how much of a batch it covered: feed it batch-sized
        # pieces so a 0.25 s reading counts as what it is
        if dh > 0 and dbusy > 0:
            self.sizer.observe(dh, dbusy)
        worker.batch_nonces = self.sizer.size()
