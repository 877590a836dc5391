"""One OpenCL device's context, in-order queue, program and result buffers.

:class:`OpenCLScanner` enqueues launches, waits for them without holding the GIL and turns
their candidates into nonces (the kernel pre-filters on the hash's top word, the host
decides on the full target); :meth:`OpenCLScanner.scan_range` is an exact range scan.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgm import _native
from sgm._native import NONCE_SPACE
from sgm.devices.opencl.precomputation import _M, precompute
from sgm.devices.opencl.program import KERNEL_NAME, ProgramCache, choose_geometry, kernel_path
from sgm.devices.opencl.runtime import cl, device_type_name, require_opencl

log = logging.getLogger(__name__)

#: Candidates one launch can return; more is an overflow (the launch is rescanned in pieces).
RESULT_CAPACITY = 4095
#: Result words read back with every launch (counter + first candidates); more cost a read.
RESULT_PREFIX = 64
#: Launches in flight at once: the device never waits for the host between launches.
DEFAULT_DEPTH = 3
#: Target time of one launch.  Three launches of 20 ms keep 60 ms of work queued, so a pause
#: of the host thread (or of any Python thread holding the GIL) shorter than 50 ms never
#: idles the device; the price is that a clean job's first launch may wait behind up to
#: three stale ones (60 ms, once per block).  A CPU device (PoCL) has the same.
KERNEL_TIME_GPU = 0.02
KERNEL_TIME_CPU = 0.02
MAX_LAUNCH = 1 << 30
_POLL = 0.0002          # shortest sleep while waiting for a launch past its expected end
_DECAY = 0.8            # weight of the past in the rate (per launch)
_ZERO = np.zeros(1, dtype=np.uint32)     # the pattern that resets a result counter
_COMPLETE = 0           # CL_COMPLETE


class _Slot:
    """One result buffer (counter + RESULT_CAPACITY nonces) and its host copies."""

    def __init__(self, ctx: Any, capacity: int) -> None:
        self.buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, 4 * (capacity + 1))
        self.prefix = np.zeros(min(RESULT_PREFIX, capacity + 1), dtype=np.uint32)
        self.full = np.zeros(capacity + 1, dtype=np.uint32)


@dataclass(eq=False)
class ScanJob:
    """One contiguous nonce range of one work unit being scanned."""

    midstate: bytes
    tail: bytes
    start: int
    count: int
    target: int
    args: tuple[int, ...]
    tag: Any = None                 # the Batch, for the device
    launched: int = 0               # nonces enqueued, from start
    done: int = 0                   # nonces collected (contiguous, from start)
    nonces: list[int] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)    # claimed candidates that are not
    overflows: int = 0

    @property
    def t7(self) -> int:
        """The target's most significant 32-bit word (the kernel's pre-filter)."""
        return min(self.target >> 224, _M)


@dataclass(eq=False)
class Launch:
    job: ScanJob
    offset: int                      # from job.start
    count: int
    slot: _Slot
    kernel_event: Any
    read_event: Any
    enqueued_at: float               # perf_counter() when enqueued
    expected_end: float              # perf_counter() by which it should be done


class OpenCLScanner:
    """One OpenCL device's context, in-order queue, program and result buffers.

    Launches go into one in-order queue, so a result buffer can be reused as soon as its
    launch is collected or dropped: whatever is enqueued later runs after it.  The rate
    (nonces/s, launch overheads included) is learnt from the spacing of completions while
    the queue stays full, and sizes launches to ``kernel_time`` seconds each.
    """

    def __init__(self, dev: Any, *, vector_width: int | None = None,
                 worksize: int | None = None, builtins: bool | None = None,
                 kernel_time: float | None = None,
                 depth: int = DEFAULT_DEPTH, capacity: int = RESULT_CAPACITY,
                 cache: ProgramCache | None = None, source: str | None = None,
                 source_path: Path | str | None = None, tune: bool | None = None) -> None:
        require_opencl()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.device = dev
        self.device_type = device_type_name(dev)
        if source is None:
            source = Path(source_path or kernel_path()).read_text(encoding="utf-8")
        self.source = source
        self.cache = cache or ProgramCache()
        # a GPU's geometry is tuned on it at first use and kept (tuning.py), unless the
        # caller or SGM_OPENCL_VECTOR / SGM_OPENCL_WORKSIZE name one
        if tune is None:
            tune = (self.device_type == "GPU" and vector_width is None and worksize is None
                    and not os.environ.get("SGM_OPENCL_VECTOR")
                    and not os.environ.get("SGM_OPENCL_WORKSIZE"))
        self.tuning: dict[str, Any] | None = None
        if tune:
            from sgm.devices.opencl import tuning

            self.tuning = tuning.load(self.cache, dev, source) or \
                tuning.tune(dev, self.cache, source)
            vector_width, worksize = self.tuning["vector_width"], self.tuning["worksize"]
        self.vector_width, self.worksize, self.builtins = choose_geometry(
            dev, vector_width, worksize, builtins)
        self.step = self.vector_width * self.worksize          # nonces per work-group
        self.kernel_time = kernel_time or (KERNEL_TIME_GPU if self.device_type == "GPU"
                                           else KERNEL_TIME_CPU)
        self.depth = depth
        self.capacity = capacity
        self.options = (f"-D VECTOR_WIDTH={self.vector_width} -D WORKSIZE={self.worksize} "
                        f"-D USE_BUILTINS={int(self.builtins)}")
        self.context = cl.Context([dev])
        try:
            props = cl.command_queue_properties.PROFILING_ENABLE
            self.queue = cl.CommandQueue(self.context, dev, properties=props)
            self.profiling = True
        except cl.Error:
            self.queue = cl.CommandQueue(self.context, dev)
            self.profiling = False
        self.program, self.program_origin = self.cache.load(self.context, dev, source,
                                                            self.options)
        self.kernel = cl.Kernel(self.program, KERNEL_NAME)
        # typed scalars: pyopencl then sets all 32 arguments and enqueues in ~10 us
        self.kernel.set_scalar_arg_dtypes([np.uint32] * 3 + [None] + [np.uint32] * 28)
        self._slots = [_Slot(self.context, capacity) for _ in range(depth + 1)]
        self._free = list(self._slots)
        self.inflight: deque[Launch] = deque()
        self._orphans: list[Launch] = []     # dropped launches still running on the device
        #: wakes a wait early (an abort flag sets it)
        self.wake = threading.Event()
        self._busy_until = 0.0
        self._last_done: float | None = None     # when the previous launch was seen done
        self.rate = 0.0              # nonces/s, launch overheads included (decaying)
        self._sum_n = self._sum_t = self._sum_k = 0.0
        self.launch_size = self.step * 16
        self.launch_s = 0.0          # seconds one launch takes (decaying, from completions)
        self.profiled_kernel_s = 0.0  # the last launch's kernel time by the device's clock
        self.launches = 0
        self.dropped = 0              # launches never read (a batch ended early or was dropped)
        self.overflows = 0

    # ----------------------------------------------------------- jobs and launches
    def job(self, midstate: bytes, tail: bytes, start: int, count: int, target: int,
            tag: Any = None) -> ScanJob:
        if not 0 <= start < NONCE_SPACE or count < 1 or start + count > NONCE_SPACE:
            raise ValueError(f"bad nonce range start={start} count={count}")
        if target < 0:
            raise ValueError("target must be >= 0")
        return ScanJob(midstate, tail, start, count, target, precompute(midstate, tail), tag)

    def fill(self, job: ScanJob, depth: int | None = None) -> None:
        """Enqueue launches of ``job`` while fewer than ``depth`` are in flight."""
        depth = self.depth if depth is None else depth
        self._prune_orphans()
        while len(self.inflight) < depth and job.launched < job.count and self._free:
            n = min(self.launch_size, job.count - job.launched)
            self.inflight.append(self._enqueue(job, job.launched, n, self._free.pop()))
            job.launched += n

    def _enqueue(self, job: ScanJob, offset: int, count: int, slot: _Slot) -> Launch:
        groups = -(-count // self.step)
        q = self.queue
        cl.enqueue_fill_buffer(q, slot.buf, _ZERO, 0, 4)
        kev = self.kernel(q, (groups * self.worksize,), (self.worksize,),
                          job.start + offset, count, job.t7, slot.buf, self.capacity, *job.args)
        rev = cl.enqueue_copy(q, slot.prefix, slot.buf, is_blocking=False)
        q.flush()
        now = time.perf_counter()
        expected = count / self.rate if self.rate > 0 else 0.0
        self._busy_until = max(self._busy_until, now) + expected
        self.launches += 1
        return Launch(job, offset, count, slot, kev, rev, now, self._busy_until)

    def wait(self, launch: Launch, stop: Callable[[], bool] | None = None) -> bool:
        """Wait, without holding the GIL, until ``launch`` is done: True; False as soon as
        ``stop()`` is true (setting ``wake`` cuts a sleep short).

        Sleeps 3/4 of the time the launch should still take, again and again, then polls
        its status with short, growing sleeps.  No driver wait: clWaitForEvents busy-spins
        on some GPU drivers, and pyopencl runs each event callback on a thread of its own.
        """
        ev = launch.read_event
        while True:
            self.wake.clear()
            status = ev.command_execution_status
            if status == _COMPLETE:
                return True
            if status < 0:
                ev.wait()   # raises the OpenCL error of the failed command
                raise cl.RuntimeError(f"launch failed with status {status}")  # pragma: no cover
            if stop is not None and stop():
                return False
            late = time.perf_counter() - launch.expected_end
            timeout = -0.75 * late if late < -_POLL else min(max(_POLL, late / 8), 0.002)
            self.wake.wait(timeout)

    def is_done(self, launch: Launch) -> bool:
        status = launch.read_event.command_execution_status
        if status < 0:
            launch.read_event.wait()
        return bool(status == _COMPLETE)

    def collect(self, launch: Launch) -> None:
        """Fold a finished launch (the head of ``inflight``) into its job."""
        assert self.inflight and self.inflight[0] is launch
        self.inflight.popleft()
        job = launch.job
        try:
            self._learn(launch)
            n = int(launch.slot.prefix[0])
            if n > self.capacity:
                # more candidates than the buffer holds: rescan the range in pieces so
                # that none is lost (the host decides; nothing is silently truncated)
                self.overflows += 1
                job.overflows += 1
                log.debug("launch of %d nonces at %#x overflowed (%d candidates): rescanning",
                          launch.count, job.start + launch.offset, n)
                self._rescan(job, launch.offset, launch.count, n)
                self._last_done = None
            elif n:
                if n + 1 <= len(launch.slot.prefix):
                    found = launch.slot.prefix[1:n + 1]
                else:
                    cl.enqueue_copy(self.queue, launch.slot.full[:n + 1], launch.slot.buf,
                                    is_blocking=True)
                    found = launch.slot.full[1:n + 1]
                self._check(job, (int(x) for x in found))
        finally:
            self._free.append(launch.slot)
        job.done = launch.offset + launch.count

    def _learn(self, launch: Launch) -> None:
        """Fold the launch's time into the rate and size the next launches.

        While the queue stays full a launch runs from the previous one's completion to its
        own, so the spacing of completions is its time on the device, overheads included
        (device-side profiling is not trusted: PoCL's is far off)."""
        now = time.perf_counter()
        last, self._last_done = self._last_done, now
        if self.profiling and self.launches % 16 == 0:   # for reports only
            try:
                kev = launch.kernel_event
                self.profiled_kernel_s = (kev.profile.end - kev.profile.start) * 1e-9
            except cl.Error:
                pass
        if last is None:
            return        # the queue ran dry or unread launches ran before: no clean sample
        seconds = now - max(last, launch.enqueued_at)
        if seconds <= 0:
            return
        # decaying sums of nonces and seconds: a completion seen late makes one interval
        # long and the next one short, and their sum is right (a mean of rates is not)
        nonces = -(-launch.count // self.step) * self.step
        self._sum_n = self._sum_n * _DECAY + nonces
        self._sum_t = self._sum_t * _DECAY + seconds
        self._sum_k = self._sum_k * _DECAY + 1
        self.rate = self._sum_n / self._sum_t
        self.launch_s = self._sum_t / self._sum_k
        n = int(self.rate * self.kernel_time)
        self.launch_size = max(self.step, min(MAX_LAUNCH, n - n % self.step))

    def _check(self, job: ScanJob, candidates: Iterable[int]) -> None:
        """The host decides: a candidate meeting the full target is a nonce; one whose top
        word does not pass the kernel's own test is the device's error (kept apart)."""
        t7 = job.t7
        for nonce in candidates:
            if not job.start <= nonce < job.start + job.count:
                job.bad.append(nonce)
                continue
            value = int.from_bytes(_native.sha256d_final_state(job.midstate, job.tail, nonce),
                                   "little")
            if value <= job.target:
                job.nonces.append(nonce)
            elif value >> 224 > t7:
                job.bad.append(nonce)

    def _rescan(self, job: ScanJob, offset: int, count: int, seen: int) -> None:
        """Scan [offset, offset+count) of ``job`` again in launches small enough for the
        result buffer, one at a time (each after whatever is queued before it)."""
        piece = max(1, min(count // 2, count * self.capacity // (2 * seen)))
        pos = offset
        while pos < offset + count:
            n = min(piece, offset + count - pos)
            slot = self._free.pop()
            try:
                launch = self._enqueue(job, pos, n, slot)
                launch.read_event.wait()
                got = int(slot.prefix[0])
                if 0 < got <= self.capacity:
                    cl.enqueue_copy(self.queue, slot.full[:got + 1], slot.buf, is_blocking=True)
                    self._check(job, (int(x) for x in slot.full[1:got + 1]))
            finally:
                self._free.append(slot)
            if got > self.capacity:
                self.overflows += 1
                self._rescan(job, pos, n, got)
            pos += n

    def drop(self, job: ScanJob) -> int:
        """Forget ``job``'s launches still in flight (they finish on the device unread;
        later launches queue behind them).  Returns how many there were."""
        mine = [la for la in self.inflight if la.job is job]
        for la in mine:
            self.inflight.remove(la)
            self._free.append(la.slot)
        if mine:
            self._last_done = None
            self.dropped += len(mine)
            # kept until done: pyopencl's event of a pending read into host memory waits for
            # it when destroyed, and would block this thread (holding the GIL) meanwhile
            self._orphans.extend(mine)
        return len(mine)

    def _prune_orphans(self) -> None:
        if self._orphans:
            self._orphans = [la for la in self._orphans
                             if la.read_event.command_execution_status > _COMPLETE]

    def harvest(self, job: ScanJob) -> None:
        """Collect every launch of ``job`` at the head of the queue that is already done."""
        while self.inflight and self.inflight[0].job is job and self.is_done(self.inflight[0]):
            self.collect(self.inflight[0])

    # ----------------------------------------------------------- whole ranges
    def scan_range(self, midstate: bytes, tail: bytes, start: int, count: int, target: int,
                   stop: Callable[[], bool] | None = None) -> ScanJob:
        """Scan nonces start..start+count-1 exactly (the job's ``nonces`` sorted)."""
        job = self.job(midstate, tail, start, count, target)
        try:
            while job.done < job.count:
                self.fill(job)
                head = self.inflight[0]
                if not self.wait(head, stop):
                    break
                self.collect(head)
        finally:
            self.drop(job)
        job.nonces.sort()
        return job

    def calibrate(self, seconds: float = 0.05) -> float:
        """Measure the rate (nonces/s) and size launches: a warm-up launch (JIT compilers
        build there), single launches doubled until one takes half the target kernel time,
        then about ``seconds`` (at least four launches) of pipelined launches."""
        ms = _native.sha256_midstate(bytes(range(64)))
        tail = bytes(range(64, 76))
        self.launch_size = self.step
        self.scan_range(ms, tail, 0, self.step, 0)
        size = self.step * 4
        while True:
            self.launch_size = size
            t0 = time.perf_counter()
            self.scan_range(ms, tail, 0, size, 0)
            wall = time.perf_counter() - t0
            if wall >= self.kernel_time / 2 or size >= MAX_LAUNCH // 2 or wall > 2:
                break
            size *= 2
        self.rate = size / max(wall, 1e-9)
        self._sum_n, self._sum_t, self._sum_k = float(size), max(wall, 1e-9), 1.0
        n = int(self.rate * self.kernel_time)
        self.launch_size = max(self.step, min(MAX_LAUNCH, n - n % self.step))
        count = min(max(4 * self.launch_size, int(self.rate * seconds)), 1 << 31)
        t0 = time.perf_counter()
        job = self.scan_range(ms, tail, 1 << 31, count, 0)
        return job.done / (time.perf_counter() - t0)

    def abandon(self) -> None:
        """The device is lost: forget what is in flight without waiting for it (kept, not
        destroyed: a lost device may never finish them, and destroying a pending read
        would wait)."""
        self._orphans.extend(self.inflight)
        self.inflight.clear()

    def close(self) -> None:
        """Wait for what is queued and forget it."""
        try:
            self.queue.finish()
        except cl.Error:
            pass
        self.inflight.clear()
        self._orphans.clear()
        self._free = list(self._slots)
