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

Results travel one way: devices push candidates (device, generation, midstate id, nonce)
into a bounded native buffer -- CPU workers from their GIL-free loops, Python devices from
theirs -- and one collector thread at normal priority drains it, re-checks each candidate
with hashlib and submits the shares.  Candidates of a job that is gone are counted stale
as one number per drain, never one event each.  The collector also reads the native
workers' counters into telemetry and keeps the next midstates prepared ahead of need.

Knows: jobs (Job, MidstateCache, make_share), the native queue, telemetry.  Does not know
pools or sockets: found shares leave through the ``submit`` callback given by the Miner.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from sgm._native import AbortFlag, WorkQueue
from sgm._native._worker import FLAG_BLOCK, CandidateBuffer, WorkTable
from sgm.hashing import DIFF1, sha256d, target_to_difficulty
from sgm.jobs import Job, MidstateCache, PreparedWork, Share, rolling_readable
from sgm.telemetry import Telemetry
from sgm.work import Batch

log = logging.getLogger(__name__)
#: "not looked up yet" (None is a meaningful value: no such generation, no network target)
_UNSEEN: object = object()

#: Default time one batch should take on any device (seconds).
DEFAULT_BATCH_TIME = 0.1
MIN_BATCH = 4096
MAX_BATCH = 1 << 30
_DEDUP_LIMIT = 20_000
#: Job generations whose shares are still wanted, at most (the newest ones; pools keep
#: about as many non-clean jobs valid).
MAX_VALID_GENERATIONS = 16

SubmitFn = Callable[[Share, str], None]
SubmitBatchFn = Callable[[list[tuple[Share, str]]], None]
#: Midstates prepared ahead of the queue's cursor (each covers 2**32 nonces).
PREPARE_AHEAD = 2
#: Candidates the collector takes from the buffer at once.
DRAIN_MAX = 1024
#: How often the collector folds the native workers' counters into telemetry (seconds).
SAMPLE_INTERVAL = 0.25


class ResultSink(Protocol):
    """What the collector needs of a device: its name, and to hear of hardware errors
    and of the passing of time (a native device folds its counters into telemetry)."""

    name: str

    def on_results(self, hw_errors: int) -> None: ...

    def sample(self) -> None: ...


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
                 batch_time: float = DEFAULT_BATCH_TIME, cache_size: int = 4096,
                 submit_batch: SubmitBatchFn | None = None) -> None:
        if not 0.001 <= batch_time <= 60:
            raise ValueError(f"batch_time must be in [0.001, 60] seconds, got {batch_time}")
        self.telemetry = telemetry
        self.submit = submit
        #: the collector hands over each drain's shares at once when this is given
        self.submit_batch = submit_batch
        self.batch_time = batch_time
        self.queue = WorkQueue()
        self.cache = MidstateCache(cache_size)
        #: prepared midstates the native workers scan (see PREPARE_AHEAD)
        self.table = WorkTable()
        #: candidates of every device, drained by the collector thread
        self.candidates = CandidateBuffer()
        self._devices: dict[int, ResultSink] = {}
        self._names: dict[int, str] = {}     # kept after a device stops: late candidates
        self._next_index = 0
        self._collector: threading.Thread | None = None
        self._collector_stop = False
        self._done_cond = threading.Condition()
        self._processed = 0          # candidates the collector finished (drain order)
        self.blocks_ended = 0        # jobs ended because a device found a block
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._generation = 0
        self._current: int | None = None      # generation the queue enumerates
        #: generations whose shares are still wanted, oldest first (bounded)
        self._valid: OrderedDict[int, _Generation] = OrderedDict()
        self._seen: OrderedDict[tuple[object, ...], None] = OrderedDict()
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
        first = self.cache.get(job, 0)
        with self._lock:
            clean = job.clean_jobs or self._current is None
            gen = self._switch_locked(job, clean, first)
        self.telemetry.job(job.job_id, clean)
        log.info("job %s (%s), target difficulty %.6g", job.job_id,
                 "clean" if clean else "not clean", target_to_difficulty(job.target))
        return gen

    def _switch_locked(self, job: Job, clean: bool, first: PreparedWork | None = None) -> int:
        """Make ``job`` the queue's work under a new generation (the lock is held)."""
        gen = self._generation + 1
        if first is None:
            first = self.cache.get(job, 0)
        # the native workers find the first midstate ready (before the queue hands it out)
        self._put_work_locked(gen, job, job.target, first)
        self.queue.set_job(gen, job.n_midstates)   # may raise: then only the table moved
        self._generation = gen
        if clean:
            self._valid.clear()
            self._seen.clear()
            self.cache.clear()
            self.cache.put(job, first)     # computed above: not again on the switch path
        self._valid[gen] = _Generation(job, job.target, job.version_mask)
        while len(self._valid) > MAX_VALID_GENERATIONS:
            self._valid.popitem(last=False)
        self.table.drop_before(next(iter(self._valid)))
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
                for number, g in self._valid.items():
                    g.target = min(g.target, job.target)
                    self.table.retarget(number, g.target)
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
            self.table.clear()
            self._current = None
            for flag in self._abort_flags:
                flag.set()

    def end_job(self, generation: int) -> bool:
        """A block was found in ``generation``: that job and every older one are over
        (their work is worthless now), the devices stop hashing them at once and wait for
        the next job.  Returns whether anything was still running."""
        with self._lock:
            over = [g for g in self._valid if g <= generation]
            for g in over:
                del self._valid[g]
            ended = self._current is not None and self._current <= generation
            if ended:
                self.queue.flush()
                self._current = None
            self.table.drop_before(generation + 1)
            if ended:
                for flag in self._abort_flags:
                    flag.set()
        if over:
            self.blocks_ended += 1
        return bool(over)

    def close(self) -> None:
        """No more work: pulls return None and running scans stop.  Candidates already
        found are still processed (see :meth:`shutdown`)."""
        with self._lock:
            self._closed = True
            for flag in self._abort_flags:
                flag.set()
            self._work_ready.notify_all()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Process every candidate found so far, then end the collector thread."""
        self.sync(timeout)
        with self._lock:
            self._collector_stop = True
            thread, self._collector = self._collector, None
        self.candidates.wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # --------------------------------------------------------------- devices
    def register_device(self, device: ResultSink) -> int:
        """Make ``device`` a source of candidates: returns the index it pushes under.
        The collector thread starts with the first device."""
        with self._lock:
            index = self._next_index
            self._next_index += 1
            self._devices[index] = device
            self._names[index] = device.name
            if self._collector is None:
                self._collector_stop = False
                self._collector = threading.Thread(target=self._collect_loop,
                                                   name="sgm-collector", daemon=True)
                self._collector.start()
        return index

    def unregister_device(self, index: int, timeout: float = 5.0) -> None:
        """The device stopped: process what it found, then forget it (the collector ends
        with the last device and starts again with the next one)."""
        self.sync(timeout)
        with self._lock:
            self._devices.pop(index, None)
            last = not self._devices
        if last:
            self.shutdown(timeout)

    def prepare(self, generation: int, midstate_id: int) -> bool:
        """Put the prepared work of (generation, midstate id) and the next PREPARE_AHEAD
        midstates into the native table; False if the generation is no longer wanted."""
        with self._lock:
            active = self._valid.get(generation)
            if active is None:
                return False
            job, target = active.job, active.target
        last = min(job.n_midstates, midstate_id + 1 + PREPARE_AHEAD)
        for mid in range(midstate_id, last):
            if mid != midstate_id and self.table.has(generation, mid):
                continue
            work = self.cache.get(job, mid)
            with self._lock:
                if generation not in self._valid:
                    return False
                self._put_work_locked(generation, job, target, work)
        return True

    def _put_work_locked(self, generation: int, job: Job, target: int,
                         work: PreparedWork) -> None:
        self.table.put(generation, work.midstate_id, work.midstate, work.tail, target,
                       job.network_target)

    def _prepare_ahead(self) -> None:
        """Keep the midstates after the queue's cursor prepared (the collector calls this
        between drains, so a worker rarely has to ask)."""
        st = self.queue.stats()
        cursor = st["cursor"]
        if cursor is None or not st["has_job"]:
            return
        gen, mid = st["generation"], cursor[0]
        if not all(self.table.has(gen, m) for m in range(mid, min(st["n_midstates"],
                                                                  mid + 1 + PREPARE_AHEAD))):
            self.prepare(gen, mid)

    def wait_for_work(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until the queue has something to hand out."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._closed:
                if self.queue.has_job and not self.queue.exhausted:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._work_ready.wait(left)
        return False

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
    def report(self, device_index: int, batch: Batch, nonces: list[int]) -> None:
        """A Python device's candidates of one batch: into the collector's buffer (waits,
        with the GIL released, while the buffer is full)."""
        if nonces:
            self.candidates.push(device_index, batch.generation, batch.midstate_id, nonces)

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every candidate pushed so far has been processed (True), at most
        ``timeout`` s.  Without a collector running, process them on this thread."""
        target = self.candidates.pushed
        deadline = time.monotonic() + timeout
        with self._done_cond:
            while self._processed < target:
                if self._collector is None or not self._collector.is_alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done_cond.wait(min(left, 0.05))
        while self._processed < target and len(self.candidates):
            self._drain_once(0.0)
        return self._processed >= target

    def _min_valid_generation(self) -> int:
        """Candidates of older generations are stale (counted, never re-checked)."""
        with self._lock:
            return next(iter(self._valid)) if self._valid else self._generation + 1

    def _collect_loop(self) -> None:
        next_sample = 0.0
        while True:
            with self._lock:
                stop = self._collector_stop
            if stop and not len(self.candidates):
                break
            try:
                self._drain_once(0.05)
                now = time.monotonic()
                if now >= next_sample:
                    next_sample = now + SAMPLE_INTERVAL
                    self._sample()
            except Exception:  # noqa: BLE001 - the share path must outlive one bad candidate
                log.exception("collector: unexpected error")
                time.sleep(0.05)
        self._sample()

    def sample_devices(self) -> None:
        """Fold every native device's counters into telemetry now (the collector does it
        every SAMPLE_INTERVAL; a reader that must be exact, such as a summary, asks)."""
        with self._lock:
            devices = list(self._devices.values())
        for dev in devices:
            dev.sample()

    def _sample(self) -> None:
        self.sample_devices()
        self._prepare_ahead()

    def _drain_once(self, timeout: float) -> None:
        items, stale = self.candidates.drain(DRAIN_MAX, timeout, self._min_valid_generation())
        try:
            taken: dict[int, int] = dict(stale)
            for item in items:
                taken[item[0]] = taken.get(item[0], 0) + 1
            for index, n in taken.items():
                self.telemetry.record_candidates(self._device_name(index), n)
            for index, n in stale.items():
                self.telemetry.record_stale_count(self._device_name(index), n)
            if items:
                self._process(items)
        finally:
            with self._done_cond:
                self._processed += len(items) + sum(stale.values())
                self._done_cond.notify_all()

    def _device_name(self, index: int) -> str:
        return self._names.get(index, f"device{index}")

    def _process(self, items: list[tuple[int, int, int, int, int]]) -> None:
        """Re-check and pass on one drain's candidates (in the order they were found).

        What is the same for a whole drain is looked up once: a generation's job and
        network target, a device's name; the shares found go to telemetry together."""
        hw: dict[int, int] = {}
        stale: dict[int, int] = {}
        checked: dict[int, int] = {}
        ended = -1
        out: list[tuple[Share, str]] | None = [] if self.submit_batch is not None else None
        found: list[tuple[str, str, int, float]] = []
        jobs: dict[int, tuple[Job, int | None] | None] = {}
        names: dict[int, str] = {}
        for index, gen, mid, nonce, flags in items:
            if gen <= ended:
                stale[index] = stale.get(index, 0) + 1
                continue
            if gen in jobs:
                entry = jobs[gen]
            else:
                with self._lock:
                    active = self._valid.get(gen)
                entry = None if active is None else (active.job, active.job.network_target)
                jobs[gen] = entry
            if entry is None:
                stale[index] = stale.get(index, 0) + 1
                continue
            job, network = entry
            work = self.cache.get(job, mid)
            name = names.get(index)
            if name is None:
                name = names[index] = self._device_name(index)
            # the easiest target this generation ever had: what any device scanned against
            outcome = self._check(name, gen, job, work, nonce, job.target, out,
                                  network=network, found=found)
            checked[index] = checked.get(index, 0) + 1
            if outcome == _HW_ERROR:
                hw[index] = hw.get(index, 0) + 1
            elif outcome == _STALE:
                jobs[gen] = None        # the generation ended meanwhile
            elif outcome == _BLOCK or flags & FLAG_BLOCK:
                if self.end_job(gen):
                    log.info("job %s: a block was found; its work is over", job.job_id)
                ended = max(ended, gen)
        if found:
            self.telemetry.record_shares_found(found)
        if out and self.submit_batch is not None:
            self.submit_batch(out)
        for index, n in stale.items():
            self.telemetry.record_stale_count(self._device_name(index), n)
        for index in checked:
            dev = self._devices.get(index)
            if dev is not None:
                dev.on_results(hw.get(index, 0))

    def _check(self, device: str, gen: int, job: Job, work: PreparedWork, nonce: int,
               scanned_target: int, out: list[tuple[Share, str]] | None = None, *,
               network: int | None | object = _UNSEEN,
               found: list[tuple[str, str, int, float]] | None = None) -> int:
        """Re-check one nonce with hashlib and submit it if it is a wanted share (into
        ``out`` when given: the caller submits them together).  ``network``: the job's
        network target when the caller has it; ``found``: where to gather the shares
        found for telemetry (the caller records them together), else recorded here."""
        digest = sha256d(work.header(nonce))
        value = int.from_bytes(digest, "little")
        if value > scanned_target:
            self.telemetry.record_hw_error(
                device, detail=f"nonce {nonce:08x} of job {job.job_id} fails the CPU re-check")
            log.warning("%s: hardware error: nonce %08x does not meet the target", device, nonce)
            return _HW_ERROR
        net = job.network_target if network is _UNSEEN else network
        block = isinstance(net, int) and value <= net
        extranonce2 = work.extranonce2.hex()
        key = (job.job_id, job.extranonce1, extranonce2, job.ntime, nonce, work.version_bits)
        with self._lock:
            active = self._valid.get(gen)
            wanted = active is not None and value <= active.target \
                and _bits_allowed(job, work.version_bits, active.mask)
            duplicate = key in self._seen
            if wanted and not duplicate:
                self._seen[key] = None
                while len(self._seen) > _DEDUP_LIMIT:
                    self._seen.popitem(last=False)
        if active is None:
            self.telemetry.record_stale_count(device, 1)
            return _STALE
        if not wanted:
            log.debug("%s: nonce %08x of job %s no longer meets the pool's rules", device,
                      nonce, job.job_id)
            self.telemetry.record_rules_dropped(device)
            return _DROPPED
        if duplicate:
            self.telemetry.record_duplicate(device)
            return _DUPLICATE
        difficulty = DIFF1 / value if value else math.inf
        share = Share(job_id=job.job_id, extranonce2=extranonce2, ntime=job.ntime_hex,
                      nonce=f"{nonce:08x}",
                      version_bits=f"{work.version_bits:08x}" if job.rolls_version else None,
                      hash=digest, difficulty=difficulty,
                      extranonce1=job.extranonce1.hex())
        if found is not None:
            found.append((device, job.job_id, nonce, difficulty))
        else:
            self.telemetry.record_share_found(device, job.job_id, nonce, difficulty)
        if out is not None:
            out.append((share, device))
        elif self.submit is not None:
            self.submit(share, device)
        return _BLOCK if block else _SHARE

    def handle_nonces(self, device: str, batch: Batch, nonces: list[int]) -> int:
        """Re-check every nonce of one batch on this thread and pass good ones on; returns
        the hardware errors (nonces that miss the target the batch was scanned with).

        One that meets it but not the target or version mask in force now (the pool raised
        the difficulty or narrowed the mask meanwhile) is not a share: dropped.  Devices
        report through :meth:`report` instead; this is the same check, synchronously.
        """
        hw = 0
        self.telemetry.record_candidates(device, len(nonces))
        for nonce in nonces:
            outcome = self._check(device, batch.generation, batch.job, batch.work, nonce,
                                  batch.target)
            if outcome == _HW_ERROR:
                hw += 1
            elif outcome == _BLOCK:
                self.end_job(batch.generation)
        return hw


_SHARE, _STALE, _DROPPED, _DUPLICATE, _HW_ERROR, _BLOCK = range(6)


def _bits_allowed(job: Job, version_bits: int, mask: int) -> bool:
    """Whether a share of ``job`` with these rolled bits may be submitted under ``mask``."""
    if not job.rolls_version:
        return True          # no sixth parameter: the job's own version, read alike by all
    return version_bits & ~mask == 0 and rolling_readable(job.version, mask)
