"""CPU devices: one worker thread per core running a native scan kernel."""
from __future__ import annotations

import time

from sgm import _native
from sgm.devices.base import BatchResult, Device
from sgm.work import Batch

_CAL_HEADER = bytes(range(80))
#: A batch stops early once it has this many candidates (the unscanned rest goes back to
#: the queue): at absurdly easy targets a batch stays small in memory and quick to re-check.
MAX_CANDIDATES_PER_BATCH = 4096


class CpuDevice(Device):
    kind = "cpu"

    def __init__(self, index: int, impl: str | None = None) -> None:
        impl = _native.require_implementation(impl)
        super().__init__(f"cpu{index}", impl, granule=4096)

    def calibrate(self, seconds: float = 0.05) -> float:
        ms = _native.sha256_midstate(_CAL_HEADER[:64])
        n = 1 << 16
        t0 = time.perf_counter()
        done = 0
        while time.perf_counter() - t0 < seconds:
            done += _native.scan(ms, _CAL_HEADER[64:76], 0, n, 0, impl=self.impl).scanned
        return done / (time.perf_counter() - t0)

    def run_batch(self, batch: Batch) -> BatchResult:
        work = batch.work
        res = _native.scan(work.midstate, work.tail, batch.start, batch.count, batch.target,
                           impl=self.impl,
                           abort=self.abort, max_results=MAX_CANDIDATES_PER_BATCH)
        # complete, aborted, or stopped at the candidate cap: `scanned` is exact either way
        return BatchResult(res.scanned, res.nonces)
