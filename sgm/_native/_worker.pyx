# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""sgm's native worker loop: CPU devices that hash without ever holding the GIL.

Three pieces, shared by every CPU worker of one scheduler:

* ``WorkTable`` -- the prepared midstates of the live job generations.  Python computes
  them ahead of need (each covers 2**32 nonces, so a couple per generation is plenty) and
  puts them here; a worker looks one up under a C lock.
* ``CandidateBuffer`` -- a bounded buffer of (device, generation, midstate id, nonce)
  that workers push into and one collector thread drains.  A full buffer makes the
  workers wait (no candidate is ever dropped): hashing slows to the pace of the share path.
* ``CpuWorker`` -- one device's loop: pull a unit from the native WorkQueue, find its
  prepared midstate, scan it with the chosen kernel in chunks, push the candidates, give
  back what an abort left unscanned, count hashes / batches / busy time in native memory.
  ``run()`` releases the GIL and returns only at an edge Python must decide: stopped,
  switched off, no work, or a midstate not prepared yet.

A candidate that meets the network (block) target ends its job at once: the worker ends
the generation in the queue, drops its midstates and raises every worker's abort flag,
so no device keeps hashing a job whose block is already found.
"""
from cpython.pythread cimport (
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
    WAIT_LOCK,
)
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from sgm._native._args cimport SGM_NONCE_SPACE, int_arg
from sgm._native._queue cimport WorkQueue, sgm_wq_unit
from sgm._native._sha256d cimport (
    AbortFlag,
    SGM_IMPLS,
    SGM_N_IMPLS,
    SGM_SCAN_ABORTED,
    SGM_SCAN_FULL,
    sgm_impl_available,
    sgm_scan_fn,
    sgm_scan_result,
    sgm_flag_load,
    sgm_flag_store,
    sgm_sha256d_state,
    sgm_work,
    sgm_work_prepare,
)


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *m, void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)
    int pthread_cond_init(pthread_cond_t *c, void *attr)
    int pthread_cond_destroy(pthread_cond_t *c)
    int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
    int pthread_cond_broadcast(pthread_cond_t *c)


cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *ts)
    int CLOCK_MONOTONIC
    int CLOCK_REALTIME


cdef extern from *:
    """
    #include <pthread.h>
    #include <time.h>
    /* wait on c for at most `seconds` (realtime clock: portable to macOS) */
    static int sgm_cond_wait_for(pthread_cond_t *c, pthread_mutex_t *m, double seconds) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)(seconds * 1e9);
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        return pthread_cond_timedwait(c, m, &ts);
    }
    static inline uint64_t sgm_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    }
    """
    int sgm_cond_wait_for(pthread_cond_t *c, pthread_mutex_t *m, double seconds) nogil
    uint64_t sgm_now_ns() nogil
    uint32_t sgm_bswap32(uint32_t x) nogil


cdef enum:
    _FLAG_BLOCK = 1
    _RUN_STOPPED = 0
    _RUN_DISABLED = 1
    _RUN_NO_WORK = 2
    _RUN_NEED_WORK = 3

#: Candidate flag: the nonce's hash also meets the network target (a block).
FLAG_BLOCK = _FLAG_BLOCK
#: CpuWorker.run() outcomes.
RUN_STOPPED = _RUN_STOPPED      # terminate was asked for
RUN_DISABLED = _RUN_DISABLED    # the device was switched off
RUN_NO_WORK = _RUN_NO_WORK      # the queue has nothing to hand out
RUN_NEED_WORK = _RUN_NEED_WORK  # a unit's midstate is not prepared: see CpuWorker.need
#: Candidates one kernel call may return before the worker pushes them.
SCAN_CHUNK_CAP = 256
#: Default capacity of a CandidateBuffer (candidates): a few drains' worth, so that a
#: flood slows the workers (backpressure) long before memory or the backlog at a stop grows.
DEFAULT_CANDIDATE_CAPACITY = 1 << 11
#: Prepared midstates a WorkTable holds at most.
DEFAULT_TABLE_CAPACITY = 256
#: Abort flags a WorkTable raises when a block ends a job.
MAX_WORKERS = 1024

cdef uint64_t _SPACE = SGM_NONCE_SPACE
_TARGET_MAX = (1 << 256) - 1


cdef struct sgm_candidate:
    int64_t generation
    uint32_t midstate_id
    uint32_t nonce
    uint32_t device
    uint32_t flags


cdef struct sgm_slot:
    int used
    int has_block
    int64_t generation
    uint32_t midstate_id
    uint64_t stamp                # insertion order: the oldest is replaced when full
    sgm_work work
    uint32_t block_target[8]


cdef void _target_words(object target, uint32_t *out) except *:
    cdef int i
    for i in range(8):
        out[i] = <uint32_t>((target >> (32 * i)) & 0xFFFFFFFF)


cdef inline int _meets(const uint32_t *h, const uint32_t *target) noexcept nogil:
    """sha256d state words h (big-endian digest words) read as a little-endian 256-bit
    number <= target (target[7] most significant)."""
    cdef int i
    cdef uint32_t v
    for i in range(7, -1, -1):
        v = sgm_bswap32(h[i])
        if v < target[i]:
            return 1
        if v > target[i]:
            return 0
    return 1


cdef class WorkTable:
    """Prepared midstates by (generation, midstate id), shared by the workers."""

    cdef PyThread_type_lock _lock
    cdef sgm_slot *_slots
    cdef size_t _cap
    cdef uint64_t _stamp
    cdef int64_t _ended_through      # generations <= this are over (a block was found)
    cdef int *_aborts[1024]
    cdef int _n_aborts
    cdef list _abort_refs
    cdef uint64_t _blocks_ended

    def __cinit__(self, capacity=DEFAULT_TABLE_CAPACITY):
        cdef object cap = int_arg(capacity, "capacity", 1, 1 << 20)
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError("cannot allocate the table lock")
        self._slots = <sgm_slot *>malloc(<size_t>cap * sizeof(sgm_slot))
        if self._slots == NULL:
            raise MemoryError("cannot allocate the work table")
        memset(self._slots, 0, <size_t>cap * sizeof(sgm_slot))
        self._cap = <size_t>cap
        self._stamp = 0
        self._ended_through = -1
        self._n_aborts = 0
        self._abort_refs = []
        self._blocks_ended = 0

    def __dealloc__(self):
        if self._slots != NULL:
            free(self._slots)
            self._slots = NULL
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    # ------------------------------------------------------------------ C level
    cdef int lookup_c(self, int64_t generation, uint32_t midstate_id, sgm_work *out,
                      uint32_t *block_target, int *has_block) noexcept nogil:
        """Copy the prepared work of (generation, midstate_id) out: 1 if found."""
        cdef size_t i
        cdef int j
        cdef int found = 0
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        if generation > self._ended_through:
            for i in range(self._cap):
                if self._slots[i].used and self._slots[i].generation == generation \
                        and self._slots[i].midstate_id == midstate_id:
                    out[0] = self._slots[i].work
                    has_block[0] = self._slots[i].has_block
                    for j in range(8):
                        block_target[j] = self._slots[i].block_target[j]
                    found = 1
                    break
        PyThread_release_lock(self._lock)
        return found

    cdef void end_through_c(self, int64_t generation) noexcept nogil:
        """A block was found in ``generation``: it and every older one are over."""
        cdef size_t i
        cdef int k
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        if generation > self._ended_through:
            self._ended_through = generation
            self._blocks_ended += 1
            for i in range(self._cap):
                if self._slots[i].used and self._slots[i].generation <= generation:
                    self._slots[i].used = 0
            for k in range(self._n_aborts):
                sgm_flag_store(self._aborts[k], 1)
        PyThread_release_lock(self._lock)

    # ------------------------------------------------------------------ Python API
    def put(self, generation, midstate_id, midstate, tail, target, block_target=None):
        """Store the prepared work of one midstate (replacing an equal key, else the
        oldest entry when full).  ``block_target`` (the network target) makes the workers
        end the job at the first candidate that meets it."""
        cdef object g = int_arg(generation, "generation", 0, (1 << 63) - 1)
        cdef object m = int_arg(midstate_id, "midstate_id", 0, 0xFFFFFFFF)
        int_arg(target, "target", 0, _TARGET_MAX)
        if block_target is not None:
            int_arg(block_target, "block_target", 0, _TARGET_MAX)
        cdef bytes ms = bytes(midstate)
        cdef bytes tl = bytes(tail)
        if len(ms) != 32:
            raise ValueError(f"midstate must be 32 bytes long, got {len(ms)}")
        if len(tl) != 12:
            raise ValueError(f"tail must be 12 bytes long, got {len(tl)}")
        cdef sgm_slot s
        cdef int i
        cdef const unsigned char *mp = ms
        cdef const unsigned char *tp = tl
        memset(&s, 0, sizeof(sgm_slot))
        for i in range(8):
            s.work.midstate[i] = (<uint32_t>mp[4 * i]) | (<uint32_t>mp[4 * i + 1] << 8) | \
                (<uint32_t>mp[4 * i + 2] << 16) | (<uint32_t>mp[4 * i + 3] << 24)
        for i in range(3):
            s.work.tail[i] = (<uint32_t>tp[4 * i] << 24) | (<uint32_t>tp[4 * i + 1] << 16) | \
                (<uint32_t>tp[4 * i + 2] << 8) | (<uint32_t>tp[4 * i + 3])
        _target_words(target, s.work.target)
        if block_target is not None:
            _target_words(block_target, s.block_target)
            s.has_block = 1
        sgm_work_prepare(&s.work)
        s.used = 1
        s.generation = g
        s.midstate_id = m
        cdef size_t k, victim = 0
        cdef uint64_t oldest = <uint64_t>-1
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            self._stamp += 1
            s.stamp = self._stamp
            for k in range(self._cap):
                if not self._slots[k].used:
                    if oldest != 0:
                        victim = k
                        oldest = 0
                elif self._slots[k].generation == s.generation \
                        and self._slots[k].midstate_id == s.midstate_id:
                    victim = k
                    break
                elif oldest != 0 and self._slots[k].stamp < oldest:
                    victim = k
                    oldest = self._slots[k].stamp
            self._slots[victim] = s
            PyThread_release_lock(self._lock)

    def retarget(self, generation, target):
        """Scan ``generation``'s midstates against ``target`` from the next kernel call on."""
        cdef int64_t g = int_arg(generation, "generation", 0, (1 << 63) - 1)
        int_arg(target, "target", 0, _TARGET_MAX)
        cdef uint32_t words[8]
        _target_words(target, words)
        cdef size_t k
        cdef int i
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            for k in range(self._cap):
                if self._slots[k].used and self._slots[k].generation == g:
                    for i in range(8):
                        self._slots[k].work.target[i] = words[i]
                    sgm_work_prepare(&self._slots[k].work)
            PyThread_release_lock(self._lock)

    def drop_before(self, generation):
        """Forget every midstate of generations older than ``generation``."""
        cdef int64_t g = int_arg(generation, "generation", 0, (1 << 63) - 1)
        cdef size_t k
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            for k in range(self._cap):
                if self._slots[k].used and self._slots[k].generation < g:
                    self._slots[k].used = 0
            PyThread_release_lock(self._lock)

    def clear(self):
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            memset(self._slots, 0, self._cap * sizeof(sgm_slot))
            PyThread_release_lock(self._lock)

    def has(self, generation, midstate_id):
        cdef int64_t g = int_arg(generation, "generation")
        cdef uint32_t m = int_arg(midstate_id, "midstate_id", 0, 0xFFFFFFFF)
        cdef sgm_work w
        cdef uint32_t bt[8]
        cdef int hb
        return bool(self.lookup_c(g, m, &w, bt, &hb))

    def register_abort(self, AbortFlag flag):
        """Raise ``flag`` when a block ends a job (the table keeps a reference)."""
        if flag in self._abort_refs:
            return
        if self._n_aborts >= MAX_WORKERS:
            raise OverflowError(f"at most {MAX_WORKERS} abort flags")
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        self._aborts[self._n_aborts] = &flag.flag
        self._n_aborts += 1
        PyThread_release_lock(self._lock)
        self._abort_refs.append(flag)

    def unregister_abort(self, AbortFlag flag):
        cdef int k, j
        if flag not in self._abort_refs:
            return
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        for k in range(self._n_aborts):
            if self._aborts[k] == &flag.flag:
                for j in range(k, self._n_aborts - 1):
                    self._aborts[j] = self._aborts[j + 1]
                self._n_aborts -= 1
                break
        PyThread_release_lock(self._lock)
        self._abort_refs.remove(flag)

    @property
    def ended_through(self):
        """The newest generation a block ended (-1: none)."""
        return self._ended_through

    @property
    def blocks_ended(self):
        return self._blocks_ended

    def __len__(self):
        cdef size_t k, n = 0
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        for k in range(self._cap):
            if self._slots[k].used:
                n += 1
        PyThread_release_lock(self._lock)
        return n


cdef class CandidateBuffer:
    """Bounded buffer of candidates: many workers push, one collector drains."""

    cdef pthread_mutex_t _mu
    cdef pthread_cond_t _nonempty
    cdef pthread_cond_t _space
    cdef sgm_candidate *_buf
    cdef size_t _cap
    cdef size_t _head
    cdef size_t _count
    cdef uint64_t _pushed
    cdef uint64_t _drained
    cdef uint64_t _waits           # pushes that had to wait for room
    cdef int _closed
    cdef int _ready

    def __cinit__(self, capacity=DEFAULT_CANDIDATE_CAPACITY):
        cdef object cap = int_arg(capacity, "capacity", 1, 1 << 26)
        self._ready = 0
        self._buf = <sgm_candidate *>malloc(<size_t>cap * sizeof(sgm_candidate))
        if self._buf == NULL:
            raise MemoryError("cannot allocate the candidate buffer")
        pthread_mutex_init(&self._mu, NULL)
        pthread_cond_init(&self._nonempty, NULL)
        pthread_cond_init(&self._space, NULL)
        self._ready = 1
        self._cap = <size_t>cap
        self._head = self._count = 0
        self._pushed = self._drained = self._waits = 0
        self._closed = 0

    def __dealloc__(self):
        if self._ready:
            pthread_cond_destroy(&self._nonempty)
            pthread_cond_destroy(&self._space)
            pthread_mutex_destroy(&self._mu)
        if self._buf != NULL:
            free(self._buf)
            self._buf = NULL

    cdef size_t push_c(self, const sgm_candidate *items, size_t n) noexcept nogil:
        """Append n candidates, waiting for room while the buffer is full; returns how many
        were stored (fewer only once the buffer is closed)."""
        cdef size_t done = 0
        cdef size_t tail
        cdef int waited = 0
        pthread_mutex_lock(&self._mu)
        while done < n:
            if self._closed:
                break
            if self._count == self._cap:
                if not waited:
                    self._waits += 1
                    waited = 1
                sgm_cond_wait_for(&self._space, &self._mu, 0.05)
                continue
            tail = (self._head + self._count) % self._cap
            self._buf[tail] = items[done]
            self._count += 1
            self._pushed += 1
            done += 1
        if done:
            pthread_cond_broadcast(&self._nonempty)
        pthread_mutex_unlock(&self._mu)
        return done

    def push(self, device, generation, midstate_id, nonces, flags=0):
        """Push candidates from Python (a device whose loop is Python); waits for room
        with the GIL released.  Returns how many were stored."""
        cdef uint32_t dev = int_arg(device, "device", 0, 0xFFFFFFFF)
        cdef int64_t g = int_arg(generation, "generation", 0, (1 << 63) - 1)
        cdef uint32_t m = int_arg(midstate_id, "midstate_id", 0, 0xFFFFFFFF)
        cdef uint32_t fl = int_arg(flags, "flags", 0, 0xFFFFFFFF)
        cdef list ns = [int_arg(x, "nonce", 0, 0xFFFFFFFF) for x in nonces]
        cdef size_t n = len(ns), i, done
        if n == 0:
            return 0
        cdef sgm_candidate *tmp = <sgm_candidate *>malloc(n * sizeof(sgm_candidate))
        if tmp == NULL:
            raise MemoryError("candidate push")
        try:
            for i in range(n):
                tmp[i].generation = g
                tmp[i].midstate_id = m
                tmp[i].nonce = <uint32_t>ns[i]
                tmp[i].device = dev
                tmp[i].flags = fl
            with nogil:
                done = self.push_c(tmp, n)
        finally:
            free(tmp)
        return done

    def drain(self, max_items=4096, timeout=0.25, min_generation=0):
        """Take up to ``max_items`` candidates, waiting up to ``timeout`` s for the first.

        Returns (items, stale): items are (device, generation, midstate_id, nonce, flags)
        tuples of generations >= ``min_generation``; older ones (their job is gone) are only
        counted, per device, in the dict ``stale`` -- one number, not one object per share.
        """
        cdef size_t mx = int_arg(max_items, "max_items", 1, 1 << 24)
        cdef double to = float(timeout)
        cdef int64_t ming = int_arg(min_generation, "min_generation", 0, (1 << 63) - 1)
        cdef size_t take, i, k
        cdef sgm_candidate *tmp
        cdef size_t got = 0
        if to < 0:
            to = 0
        tmp = <sgm_candidate *>malloc(mx * sizeof(sgm_candidate))
        if tmp == NULL:
            raise MemoryError("candidate drain")
        try:
            with nogil:
                pthread_mutex_lock(&self._mu)
                if self._count == 0 and to > 0 and not self._closed:
                    sgm_cond_wait_for(&self._nonempty, &self._mu, to)
                take = self._count if self._count < mx else mx
                for i in range(take):
                    k = (self._head + i) % self._cap
                    tmp[i] = self._buf[k]
                self._head = (self._head + take) % self._cap
                self._count -= take
                self._drained += take
                if take:
                    pthread_cond_broadcast(&self._space)
                pthread_mutex_unlock(&self._mu)
                got = take
            items = []
            stale = {}
            for i in range(got):
                if tmp[i].generation < ming:
                    stale[tmp[i].device] = stale.get(tmp[i].device, 0) + 1
                else:
                    items.append((tmp[i].device, tmp[i].generation, tmp[i].midstate_id,
                                  tmp[i].nonce, tmp[i].flags))
            return items, stale
        finally:
            free(tmp)

    def close(self):
        """Pushes stop waiting (and store nothing more); drains still work."""
        with nogil:
            pthread_mutex_lock(&self._mu)
            self._closed = 1
            pthread_cond_broadcast(&self._space)
            pthread_cond_broadcast(&self._nonempty)
            pthread_mutex_unlock(&self._mu)

    def reopen(self):
        with nogil:
            pthread_mutex_lock(&self._mu)
            self._closed = 0
            pthread_mutex_unlock(&self._mu)

    def wake(self):
        """Cut a waiting drain short."""
        with nogil:
            pthread_mutex_lock(&self._mu)
            pthread_cond_broadcast(&self._nonempty)
            pthread_mutex_unlock(&self._mu)

    @property
    def pushed(self):
        return self._pushed

    @property
    def drained(self):
        return self._drained

    @property
    def waits(self):
        """How often a push found the buffer full and waited."""
        return self._waits

    @property
    def capacity(self):
        return self._cap

    def __len__(self):
        return self._count


cdef class CpuWorker:
    """One CPU device's hashing loop (see the module docstring)."""

    cdef WorkQueue _queue
    cdef WorkTable _table
    cdef CandidateBuffer _out
    cdef readonly AbortFlag abort
    cdef readonly int index
    cdef readonly str impl
    cdef sgm_scan_fn _fn
    cdef int _enabled
    cdef int _terminate
    cdef int _hashing
    cdef uint64_t _batch_nonces
    # counters: written by the worker only, read by anyone (aligned 64-bit stores)
    cdef uint64_t _hashes
    cdef uint64_t _batches
    cdef uint64_t _busy_ns
    cdef uint64_t _candidates
    cdef uint64_t _blocks
    cdef uint64_t _last_latency_ns
    cdef uint64_t _last_batch_size
    cdef int64_t _last_generation
    cdef uint64_t _last_start_ns
    cdef int64_t _need_generation
    cdef uint32_t _need_midstate
    cdef uint32_t _found[256]
    cdef sgm_candidate _pending[256]

    def __cinit__(self, WorkQueue queue not None, WorkTable table not None,
                  CandidateBuffer out not None, index, impl, batch_nonces=1 << 20,
                  AbortFlag abort=None):
        cdef int i, idx = -1
        if not isinstance(impl, str):
            raise TypeError(f"impl must be a str, not {type(impl).__name__}")
        for i in range(SGM_N_IMPLS):
            if SGM_IMPLS[i].name.decode() == impl:
                idx = i
        if idx < 0:
            raise ValueError(f"impl {impl!r} is unknown")
        if not sgm_impl_available(idx):
            raise ValueError(f"impl {impl!r} is not supported by this CPU")
        self._queue = queue
        self._table = table
        self._out = out
        # the flag the scheduler raises on a clean job (the device's own), or a new one
        self.abort = abort if abort is not None else AbortFlag()
        self.index = int_arg(index, "index", 0, 0xFFFFFFFF)
        self.impl = impl
        self._fn = SGM_IMPLS[idx].fn
        self._enabled = 1
        self._terminate = 0
        self._hashing = 0
        self.batch_nonces = batch_nonces
        self._hashes = self._batches = self._busy_ns = self._candidates = self._blocks = 0
        self._last_latency_ns = self._last_batch_size = 0
        self._last_generation = 0
        self._last_start_ns = 0
        self._need_generation = -1
        self._need_midstate = 0
        table.register_abort(self.abort)

    # ------------------------------------------------------------------ control
    @property
    def batch_nonces(self):
        return self._batch_nonces

    @batch_nonces.setter
    def batch_nonces(self, value):
        self._batch_nonces = int_arg(value, "batch_nonces", 1, SGM_NONCE_SPACE)

    @property
    def enabled(self):
        return bool(sgm_flag_load(&self._enabled))

    @enabled.setter
    def enabled(self, value):
        sgm_flag_store(&self._enabled, 1 if value else 0)
        if not value:
            sgm_flag_store(&self.abort.flag, 1)

    def terminate(self):
        """End run() at its next check (a running scan stops within ABORT_STRIDE nonces)."""
        sgm_flag_store(&self._terminate, 1)
        sgm_flag_store(&self.abort.flag, 1)

    def detach(self):
        """Stop being raised by the table (the worker is going away)."""
        self._table.unregister_abort(self.abort)

    # ------------------------------------------------------------------ the loop
    def run(self):
        """Hash until Python must decide something; returns a RUN_* code (GIL released)."""
        cdef int st
        with nogil:
            st = self._run_c()
        return st

    cdef int _run_c(self) noexcept nogil:
        cdef sgm_wq_unit u
        cdef sgm_wq_unit rest
        cdef sgm_work work
        cdef uint32_t block_target[8]
        cdef uint32_t h[8]
        cdef int has_block
        cdef sgm_scan_result res
        cdef uint64_t pos, left, t0, t1, scanned
        cdef uint32_t i
        cdef size_t n_push
        cdef int ended
        while True:
            sgm_flag_store(&self.abort.flag, 0)
            if sgm_flag_load(&self._terminate):
                return _RUN_STOPPED
            if not sgm_flag_load(&self._enabled):
                return _RUN_DISABLED
            if not self._queue.pull_c(self._batch_nonces, &u):
                return _RUN_NO_WORK
            if not self._table.lookup_c(u.generation, u.midstate_id, &work, block_target,
                                        &has_block):
                self._queue.give_back_c(&u)
                self._need_generation = u.generation
                self._need_midstate = u.midstate_id
                return _RUN_NEED_WORK
            t0 = sgm_now_ns()
            self._hashing = 1
            self._last_generation = u.generation
            self._last_start_ns = t0
            pos = 0
            ended = 0
            while pos < u.nonce_count:
                left = u.nonce_count - pos
                self._fn(&work, <uint32_t>(u.nonce_start + pos), left, self._found, 256,
                         &self.abort.flag, &res)
                pos += res.done
                # counted as scanned, before its candidates go out: whoever reads a share
                # found also reads the hashes that found it
                self._hashes += res.done
                if res.n_found:
                    n_push = 0
                    for i in range(res.n_found):
                        self._pending[i].generation = u.generation
                        self._pending[i].midstate_id = u.midstate_id
                        self._pending[i].nonce = self._found[i]
                        self._pending[i].device = <uint32_t>self.index
                        self._pending[i].flags = 0
                        if has_block and not ended:
                            sgm_sha256d_state(&work, self._found[i], h)
                            if _meets(h, block_target):
                                self._pending[i].flags = _FLAG_BLOCK
                                ended = 1
                        n_push += 1
                    self._candidates += res.n_found
                    if ended:
                        # the job is over: no device hashes it any longer
                        self._blocks += 1
                        self._queue.end_through_c(u.generation)
                        self._table.end_through_c(u.generation)
                    self._out.push_c(self._pending, n_push)
                if ended or res.status == SGM_SCAN_ABORTED:
                    break
                if res.status != SGM_SCAN_FULL and res.done == 0:
                    break     # defensive: a kernel that makes no progress
            t1 = sgm_now_ns()
            self._hashing = 0
            scanned = pos
            if scanned < u.nonce_count and not ended:
                rest.generation = u.generation
                rest.midstate_id = u.midstate_id
                rest.nonce_start = <uint32_t>(u.nonce_start + scanned)
                rest.nonce_count = u.nonce_count - scanned
                self._queue.give_back_c(&rest)
            self._batches += 1
            self._busy_ns += t1 - t0
            self._last_latency_ns = t1 - t0
            self._last_batch_size = u.nonce_count

    # ------------------------------------------------------------------ reading
    def counters(self):
        """(hashes, batches, busy_ns, candidates, blocks, last_latency_ns, last_batch_size)"""
        return (self._hashes, self._batches, self._busy_ns, self._candidates, self._blocks,
                self._last_latency_ns, self._last_batch_size)

    @property
    def hashing(self):
        return bool(self._hashing)

    @property
    def last_batch_start(self):
        """(generation, CLOCK_MONOTONIC ns) of the batch started last."""
        return (self._last_generation, self._last_start_ns)

    @property
    def need(self):
        """(generation, midstate_id) that the last RUN_NEED_WORK asked for."""
        return (self._need_generation, self._need_midstate)


def monotonic_ns():
    """The clock the workers time batches with (CLOCK_MONOTONIC, ns)."""
    return sgm_now_ns()
