"""The scheduler: one logical stream of work units shared by every device.

Each device pulls :class:`~sgm.work.Batch` es from the native queue, sized so that one batch
takes about ``batch_time`` seconds at the device's measured speed; a clean job flushes the
queue atomically and raises every device's abort flag so running scans stop within a
millisecond.  Every nonce a device returns is re-checked here with hashlib before it goes
anywhere (a mismatch is a hardware error of that device); shares of a job that a clean job
replaced are counted stale and duplicates are never passed on.

A pool may change the rules of the current work without a new job: a higher difficulty
(:meth:`Scheduler.update_job` with a lower target) applies to every share from then on,
including those of batches still in flight, and never moves the queue's cursor -- nothing
is hashed twice; a new version mask (BIP 310 ``mining.set_version_mask``) applies from the
next batch on, continuing after the extranonce2 values already handed out.

Knows: jobs (Job, MidstateCache, make_share), the native queue, telemetry.  Does not know
pools or sockets: found shares leave through the ``submit`` callback given by the Miner.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Callable

from sgm._native import AbortFlag, WorkQueue
from sgm.hashing import meets_target, target_to_difficulty
from sgm.jobs import Job, MidstateCache, Share, make_share, rolling_readable
from sgm.telemetry import Telemetry
from sgm.work import Batch

log = logging.getLogger(__name__)

#: Default time one batch should take on any device (seconds).
DEFAULT_BATCH_TIME = 0.1
MIN_BATCH = 4096
MAX_BATCH = 1 << 30
_DEDUP_LIMIT = 20_000
#: Job generations whose shares are still wanted, at most (the newest ones; pools keep
#: about as many non-clean jobs valid).
MAX_VALID_GENERATIONS = 16

SubmitFn = Callable[[Share, str], None]


@dataclass
class _Generation:
    """One job as the queue enumerates it, and what its shares must satisfy *now*."""

    job: Job          # fixed for the generation: its work space (extranonce2 x version)
    target: int       # share target now: a retarget lowers it for batches in flight too
    mask: int         # version mask granted now: a rolled share must fit it


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
        self._current: int | None = None      # generation the queue enumerates
        #: generations whose shares are still wanted, oldest first (bounded)
        self._valid: OrderedDict[int, _Generation] = OrderedDict()
        self._seen: OrderedDict[tuple, None] = OrderedDict()
        self._abort_flags: set[AbortFlag] = set()
        self._closed = False
        self._exhausted_reported: int | None = None   # generation whose exhaustion was logged
        #: monotonic times of the latest clean-job flushes (bounded)
        self.job_switches: deque[float] = deque(maxlen=1000)

    # ------------------------------------------------------------------ jobs
    @property
    def current_job(self) -> Job | None:
        with self._lock:
            gen = self._valid.get(self._current) if self._current is not None else None
            return gen.job if gen else None

    @property
    def current_target(self) -> int | None:
        """The share target in force for the current job (after any retarget)."""
        with self._lock:
            gen = self._valid.get(self._current) if self._current is not None else None
            return gen.target if gen else None

    def set_job(self, job: Job) -> int:
        """Make ``job`` the work every device does next; returns its generation.

        A clean job (or the first one) invalidates every earlier job: the queue is flushed,
        running scans are aborted and shares found for older jobs are counted stale.  A
        non-clean job becomes the new work but earlier jobs stay valid (the newest
        MAX_VALID_GENERATIONS), so batches in flight finish and their shares are submitted.
        """
        # the first midstate every device will ask for, computed before any state changes:
        # if the job cannot be prepared nothing is half switched
        self.cache.get(job, 0)
        with self._lock:
            clean = job.clean_jobs or self._current is None
            gen = self._switch_locked(job, clean)
        self.telemetry.job(job.job_id, clean)
        log.info("job %s (%s), target difficulty %.6g", job.job_id,
                 "clean" if clean else "not clean", target_to_difficulty(job.target))
        return gen

    def _switch_locked(self, job: Job, clean: bool) -> int:
        """Make ``job`` the queue's work under a new generation (the lock is held)."""
        gen = self._generation + 1
        self.queue.set_job(gen, job.n_midstates)   # first: may raise, nothing changed yet
        self._generation = gen
        if clean:
            self._valid.clear()
            self._seen.clear()
            self.cache.clear()
        self._valid[gen] = _Generation(job, job.target, job.version_mask)
        while len(self._valid) > MAX_VALID_GENERATIONS:
            self._valid.popitem(last=False)
        self._current = gen
        if clean:
            for flag in self._abort_flags:
                flag.set()
            self.job_switches.append(time.monotonic())
        self._work_ready.notify_all()
        return gen

    def update_job(self, job: Job) -> None:
        """Apply new rules to the current job: ``job`` is the current job with another
        target and/or version mask (a pool's set_difficulty / set_version_mask).

        * A lower target (higher difficulty) applies at once to every valid generation:
          shares found from now on -- batches in flight included -- must meet it.  The
          queue's cursor does not move: no work is handed out twice.  A higher target is
          ignored here (it applies from the pool's next job).
        * A new version mask applies from the next batch on: shares whose rolled bits it no
          longer allows are not submitted, and the job's remaining work is enumerated under
          the new mask from the first extranonce2 value not yet handed out.
        """
        with self._lock:
            cur = self._valid.get(self._current) if self._current is not None else None
            if cur is None or cur.job.job_id != job.job_id:
                log.debug("update for job %s ignored: not the current job", job.job_id)
                return
            if job.target < cur.target:
                for g in self._valid.values():
                    g.target = min(g.target, job.target)
                log.info("job %s: share difficulty %.6g applies at once", job.job_id,
                         target_to_difficulty(job.target))
            if job.version_mask != cur.mask:
                self._new_mask_locked(cur, job.version_mask)

    def _new_mask_locked(self, cur: _Generation, mask: int) -> None:
        for g in self._valid.values():
            g.mask = mask
        old = cur.job
        new = replace(old, version_mask=mask, target=cur.target)
        log.info("job %s: version mask %08x from the next batch on%s", old.job_id, mask,
                 "" if new.rolls_version or not mask else
                 f" (job version {old.version:08x} has bits inside it: no version rolling)")
        if new.rolls_version == old.rolls_version and \
                new.n_version_variants == old.n_version_variants and \
                (not new.rolls_version or new.version_mask == old.version_mask):
            return  # the work space is enumerated the same way: carry on
        # continue after every extranonce2 value the old enumeration touched
        st = self.queue.stats()
        cursor = st["cursor"]
        touched = old.n_midstates if cursor is None else \
            cursor[0] + (1 if cursor[1] > st["nonce_start"] else 0)
        n_var = old.n_version_variants
        start = old.extranonce2_start + -(-touched // n_var)
        if start >= old.n_extranonce2:
            log.warning("job %s: no unused extranonce2 left for the new version mask; its "
                        "work starts again from the first one", old.job_id)
            start = 0
        self._switch_locked(replace(new, extranonce2_start=start), clean=False)

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

    def pull(self, max_nonces: int, timeout: float = 0.25) -> Batch | None:
        """Next batch of at most max_nonces, waiting up to ``timeout`` for a job."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.queue.pull(max_nonces)  # native, GIL released inside
            with self._lock:
                if self._closed:
                    if got is not None:
                        self.queue.give_back(*got)
                    return None
                if got is not None:
                    gen, midstate_id, start, count = got
                    active = self._valid.get(gen)
                    if active is not None:
                        job, target = active.job, active.target
                        break
                    # handed out under a generation replaced meanwhile: stale, pull again
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if got is not None or (self.queue.has_job and not self.queue.exhausted):
                    continue
                cur = self._valid.get(self._current) if self._current is not None else None
                if self.queue.has_job and cur is not None \
                        and self._exhausted_reported != self._current:
                    self._exhausted_reported = self._current
                    log.warning("job %s: every nonce of its work space is handed out; devices "
                                "wait for the pool's next job", cur.job.job_id)
                self._work_ready.wait(left)
        work = self.cache.get(job, midstate_id)
        return Batch(gen, job, work, start, count, target, time.perf_counter())

    def give_back(self, batch: Batch, scanned: int) -> None:
        """Return the unscanned rest of a batch (device stopped or scan aborted)."""
        rest = batch.count - scanned
        if rest > 0:
            self.queue.give_back(batch.generation, batch.midstate_id, batch.start + scanned, rest)

    # --------------------------------------------------------------- results
    def handle_nonces(self, device: str, batch: Batch, nonces: list[int]) -> int:
        """Re-check every nonce a device found and pass good ones on; returns hw errors.

        A nonce that misses the target the batch was scanned with is the device's hardware
        error.  One that meets it but not the target or version mask in force now (the pool
        raised the difficulty or narrowed the mask meanwhile) is not a share: dropped.
        """
        hw = 0
        job = batch.job
        for nonce in nonces:
            share = make_share(job, batch.work, nonce, batch.target)  # hashlib sha256d
            if not share.meets_target:
                hw += 1
                self.telemetry.record_hw_error(
                    device, detail=f"nonce {nonce:08x} of job {job.job_id} fails the CPU re-check")
                log.warning("%s: hardware error: nonce %08x does not meet the target", device, nonce)
                continue
            key = (job.job_id, share.extranonce1, share.extranonce2, share.ntime, share.nonce,
                   share.version_bits)
            with self._lock:
                active = self._valid.get(batch.generation)
                wanted = active is not None and meets_target(share.hash, active.target) \
                    and _bits_allowed(job, batch.work.version_bits, active.mask)
                duplicate = key in self._seen
                if wanted and not duplicate:
                    self._seen[key] = None
                    while len(self._seen) > _DEDUP_LIMIT:
                        self._seen.popitem(last=False)
            if active is None:
                self.telemetry.record_stale(device, job.job_id, nonce, share.difficulty)
                # counted by telemetry (the CLI prints it): a log line per share would flood
                log.debug("%s: stale share for job %s dropped", device, job.job_id)
                continue
            if not wanted:
                log.debug("%s: nonce %08x of job %s no longer meets the pool's rules", device,
                          nonce, job.job_id)
                continue
            if duplicate:
                self.telemetry.record_duplicate(device)
                continue
            self.telemetry.record_share_found(device, job.job_id, nonce, share.difficulty)
            if self.submit is not None:
                self.submit(share, device)
        return hw


def _bits_allowed(job: Job, version_bits: int, mask: int) -> bool:
    """Whether a share of ``job`` with these rolled bits may be submitted under ``mask``."""
    if not job.rolls_version:
        return True          # no sixth parameter: the job's own version, read alike by all
    return version_bits & ~mask == 0 and rolling_readable(job.version, mask)
