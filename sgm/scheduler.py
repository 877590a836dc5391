"""The scheduler: one logical stream of work units shared by every device.

Each device pulls work from the native queue in batches sized so that one batch takes about
``batch_time`` seconds at the device's measured speed; a clean job flushes the queue
atomically and raises every device's abort flag so running scans stop within a
millisecond.  Every nonce a device returns is re-checked here with hashlib before it goes
anywhere (a mismatch is a hardware error of that device); shares of a job that a clean job
replaced are counted stale and duplicates are never passed on.

Knows: jobs (Job, MidstateCache, make_share), the native queue, telemetry.  Does not know
pools or sockets: found shares leave through the ``submit`` callback given by the Miner.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable

from sgm._native import AbortFlag
from sgm._native._queue import WorkQueue
from sgm.hashing import target_to_difficulty
from sgm.jobs import Job, MidstateCache, PreparedWork, Share, make_share
from sgm.telemetry import Telemetry

log = logging.getLogger(__name__)

#: Default time one batch should take on any device (seconds).
DEFAULT_BATCH_TIME = 0.1
MIN_BATCH = 4096
MAX_BATCH = 1 << 30
_DEDUP_LIMIT = 20_000
#: The queue enumerates at most this many midstates per job (2^32 x 2^32 nonces: ample).
MAX_QUEUE_MIDSTATES = (1 << 32) - 1

SubmitFn = Callable[[Share, str], None]


@dataclass(frozen=True)
class ActiveJob:
    job: Job
    generation: int


@dataclass
class Pulled:
    """One batch handed to a device: nonces [start, start+count) of one midstate."""

    active: ActiveJob
    prepared: PreparedWork
    start: int
    count: int
    pulled_at: float


class BatchSizer:
    """Adaptive batch size of one device: rate x target time, shrunk by hardware errors."""

    def __init__(self, batch_time: float, initial_rate: float, granule: int = MIN_BATCH) -> None:
        self.batch_time = batch_time
        self.granule = max(1, granule)
        self.rate = max(1.0, initial_rate)
        self.hw_penalty = 1.0

    def size(self) -> int:
        n = int(self.rate * self.batch_time * self.hw_penalty)
        n -= n % self.granule
        return max(self.granule, min(MAX_BATCH, n))

    def observe(self, nonces: int, seconds: float) -> None:
        """Fold one batch's measured speed into the estimate (EWMA)."""
        if nonces <= 0 or seconds <= 0:
            return
        measured = nonces / seconds
        # short batches (aborted ones) tell less: weight by how much of a batch they were
        weight = min(1.0, seconds / self.batch_time) * 0.3
        self.rate += weight * (measured - self.rate)

    def hw_error(self) -> None:
        self.hw_penalty = max(0.05, self.hw_penalty * 0.5)

    def clean_batch(self) -> None:
        self.hw_penalty = min(1.0, self.hw_penalty * 1.1)


class Scheduler:
    """Owns the current jobs, the native queue and the result path."""

    def __init__(self, telemetry: Telemetry, submit: SubmitFn | None = None,
                 batch_time: float = DEFAULT_BATCH_TIME, cache_size: int = 4096) -> None:
        if not 0.001 <= batch_time <= 60:
            raise ValueError(f"batch_time must be in [0.001, 60] seconds, got {batch_time}")
        self.telemetry = telemetry
        self.submit = submit
        self.batch_time = batch_time
        self.queue = WorkQueue()
        self.cache = MidstateCache(cache_size)
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._generation = 0
        self._current: ActiveJob | None = None
        self._valid: dict[int, ActiveJob] = {}   # generations whose shares are still wanted
        self._seen: OrderedDict[tuple, None] = OrderedDict()
        self._abort_flags: set[AbortFlag] = set()
        self._closed = False
        self._exhausted_reported = 0             # generation whose exhaustion was logged
        #: monotonic times of the latest clean-job flushes (bounded)
        self.job_switches: deque[float] = deque(maxlen=1000)

    # ------------------------------------------------------------------ jobs
    @property
    def current_job(self) -> Job | None:
        cur = self._current
        return cur.job if cur else None

    def set_job(self, job: Job) -> int:
        """Make ``job`` the work every device does next; returns its generation.

        A clean job (or the first one) invalidates every earlier job: the queue is flushed,
        running scans are aborted and shares found for older jobs are counted stale.  A
        non-clean job becomes the new work but earlier jobs stay valid, so batches in flight
        finish and their shares are still submitted.
        """
        with self._lock:
            self._generation += 1
            gen = self._generation
            active = ActiveJob(job, gen)
            clean = job.clean_jobs or self._current is None
            if clean:
                self._valid.clear()
                self._seen.clear()
                self.cache.clear()
            self._valid[gen] = active
            self._current = active
        # the first midstate every device will ask for, computed once here (outside the lock)
        self.cache.get(job, 0)
        with self._lock:
            if self._current is not active:  # an even newer job arrived meanwhile
                return gen
            self.queue.set_job(gen, min(job.n_midstates, MAX_QUEUE_MIDSTATES))
            if clean:
                for flag in self._abort_flags:
                    flag.set()
                self.job_switches.append(time.monotonic())
            self._work_ready.notify_all()
        self.telemetry.job(job.job_id, clean)
        log.info("job %s (%s), target difficulty %.6g", job.job_id,
                 "clean" if clean else "not clean", target_to_difficulty(job.target))
        return gen

    def clear_jobs(self) -> None:
        """Forget every job (pool lost): devices idle until the next set_job."""
        with self._lock:
            self.queue.flush()
            self._valid.clear()
            self._current = None
            for flag in self._abort_flags:
                flag.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for flag in self._abort_flags:
                flag.set()
            self._work_ready.notify_all()

    # --------------------------------------------------------------- devices
    def register_abort_flag(self, flag: AbortFlag) -> None:
        with self._lock:
            self._abort_flags.add(flag)

    def unregister_abort_flag(self, flag: AbortFlag) -> None:
        with self._lock:
            self._abort_flags.discard(flag)

    def pull(self, max_nonces: int, timeout: float = 0.25) -> Pulled | None:
        """Next batch of at most max_nonces, waiting up to ``timeout`` for a job."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.queue.pull(max_nonces)  # native, GIL released inside
            if got is not None:
                gen, midstate_id, start, count = got
                active = self._valid.get(gen)
                if active is None:  # flushed between pull and lookup
                    continue
                prepared = self.cache.get(active.job, midstate_id)
                return Pulled(active, prepared, start, count, time.perf_counter())
            with self._lock:
                if self._closed:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if self.queue.has_job and not self.queue.exhausted:
                    continue
                if self.queue.exhausted and self._current is not None \
                        and self._exhausted_reported != self._current.generation:
                    self._exhausted_reported = self._current.generation
                    log.warning("job %s: every nonce of its work space is handed out; devices "
                                "wait for the pool's next job", self._current.job.job_id)
                self._work_ready.wait(left)

    def give_back(self, batch: Pulled, scanned: int) -> None:
        """Return the unscanned rest of a batch (device stopped or scan aborted)."""
        rest = batch.count - scanned
        if rest > 0:
            self.queue.give_back(batch.active.generation, batch.prepared.midstate_id,
                                 batch.start + scanned, rest)

    def is_current(self, generation: int) -> bool:
        return generation in self._valid

    # --------------------------------------------------------------- results
    def handle_nonces(self, device: str, batch: Pulled, nonces: list[int]) -> int:
        """Re-check every nonce a device found and pass good ones on; returns hw errors."""
        hw = 0
        job = batch.active.job
        for nonce in nonces:
            share = make_share(job, batch.prepared, nonce)  # hashlib sha256d
            if not share.meets_target:
                hw += 1
                self.telemetry.record_hw_error(
                    device, detail=f"nonce {nonce:08x} of job {job.job_id} fails the CPU re-check")
                log.warning("%s: hardware error: nonce %08x does not meet the target", device, nonce)
                continue
            key = (job.job_id, share.extranonce1, share.extranonce2, share.ntime, share.nonce,
                   share.version_bits)
            with self._lock:
                valid = batch.active.generation in self._valid
                duplicate = key in self._seen
                if valid and not duplicate:
                    self._seen[key] = None
                    while len(self._seen) > _DEDUP_LIMIT:
                        self._seen.popitem(last=False)
            if not valid:
                self.telemetry.record_stale(device, job.job_id, nonce, share.difficulty)
                log.info("%s: stale share for job %s dropped", device, job.job_id)
                continue
            if duplicate:
                self.telemetry.record_duplicate(device)
                continue
            self.telemetry.record_share_found(device, job.job_id, nonce, share.difficulty)
            if self.submit is not None:
                self.submit(share, device)
        return hw

