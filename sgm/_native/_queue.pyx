# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""sgm's batch queue: a lazily generated work queue over (midstate id x nonce range).

The queue never materialises nonces.  The work space of a job is described by four
numbers (generation, midstate count, nonce range) and a cursor; ``pull`` hands out the
next slice of it -- midstate 0's whole nonce range first, then midstate 1, ... -- and
``give_back`` accepts the unscanned remainder of a slice (a device stopped, a scan was
aborted) so that the next ``pull`` hands it out again before any fresh work.

State lives in C and is guarded by a C lock; ``pull`` and ``give_back`` run with the GIL
released and are O(1) apart from a short scan over the (rare) given-back units.  A native
worker loop can call ``pull_c`` / ``give_back_c`` directly from a ``nogil`` block (see
_queue.pxd).

Generations are strictly increasing: each ``set_job`` must name a larger generation than
the one before, so a unit of an older job can always be recognised as stale.
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
from libc.stdlib cimport free, realloc

from sgm._native._args cimport SGM_MAX_MIDSTATES, SGM_NONCE_SPACE, int_arg

#: Size of the nonce space of one midstate (sgm_limits.h).
NONCE_SPACE = SGM_NONCE_SPACE
#: Default bound on the number of given-back units pending at once.
DEFAULT_MAX_PENDING = 1 << 16
#: Largest accepted generation (generations are C int64).
MAX_GENERATION = (1 << 63) - 1
#: Largest accepted midstate count: the most midstate ids one job enumerates (sgm_limits.h).
MAX_MIDSTATES = SGM_MAX_MIDSTATES

cdef uint64_t _SPACE = SGM_NONCE_SPACE
cdef size_t _INITIAL_CAP = 16
cdef size_t _KEEP_CAP = 256     # larger pending arrays are released on set_job / flush

# Error code -> (exception class, message naming the offending argument)
_GIVE_BACK_ERRORS = {
    SGM_WQ_ERR_COUNT: (
        ValueError, "nonce_count must be >= 1 and the range must end at or below 2**32"),
    SGM_WQ_ERR_MIDSTATE: (ValueError, "midstate_id is not below the job's n_midstates"),
    SGM_WQ_ERR_RANGE: (
        ValueError, "nonce_start/nonce_count range is not inside the job's nonce range"),
    SGM_WQ_ERR_NOT_OUT: (ValueError, "nonce_start/nonce_count range was never handed out"),
    SGM_WQ_ERR_OVERLAP: (
        ValueError, "nonce_start/nonce_count range overlaps a unit already given back"),
    SGM_WQ_ERR_FULL: (OverflowError, "nonce_count: too many given-back units pending"),
    SGM_WQ_ERR_NOMEM: (MemoryError, "out of memory storing a given-back unit"),
}


cdef class WorkQueue:
    """Work queue over (midstate id x nonce range) of the current job.

    ``WorkQueue(max_pending=DEFAULT_MAX_PENDING)``: ``max_pending`` bounds how many
    separate given-back units may wait at once (adjacent ones are merged); a give_back
    beyond it raises OverflowError.
    """

    def __cinit__(self, max_pending=DEFAULT_MAX_PENDING):
        cdef object mp = int_arg(max_pending, "max_pending")
        if mp < 1 or mp > (1 << 30):
            raise ValueError(f"max_pending must be in [1, 2**30], got {mp}")
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError("cannot allocate the queue lock")
        self._max_pending = <size_t>mp
        self._pending = NULL
        self._n_pending = 0
        self._cap_pending = 0
        self._pending_nonces = 0
        self._has_job = False
        self._generation = -1
        self._n_midstates = 0
        self._job_start = 0
        self._job_end = 0
        self._cur_mid = 0
        self._cur_nonce = 0
        self._handed_out = 0
        self._given_back = 0
        self._stale_dropped = 0

    def __dealloc__(self):
        if self._pending != NULL:
            free(self._pending)
            self._pending = NULL
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    # ------------------------------------------------------------------ C level (nogil)

    cdef void _acquire(self) noexcept nogil:
        PyThread_acquire_lock(self._lock, WAIT_LOCK)

    cdef void _release(self) noexcept nogil:
        PyThread_release_lock(self._lock)

    cdef void _clear_pending_locked(self) noexcept nogil:
        self._n_pending = 0
        self._pending_nonces = 0
        if self._cap_pending > _KEEP_CAP:
            free(self._pending)
            self._pending = NULL
            self._cap_pending = 0

    cdef int _pull_locked(self, uint64_t max_nonces, sgm_wq_unit *out) noexcept nogil:
        cdef sgm_wq_unit *top
        cdef uint64_t n
        if not self._has_job or max_nonces == 0:
            return 0
        if self._n_pending > 0:
            top = &self._pending[self._n_pending - 1]
            n = top.nonce_count if top.nonce_count < max_nonces else max_nonces
            out.generation = self._generation
            out.midstate_id = top.midstate_id
            out.nonce_start = top.nonce_start
            out.nonce_count = n
            if n == top.nonce_count:
                self._n_pending -= 1
            else:
                top.nonce_start = <uint32_t>(top.nonce_start + n)
                top.nonce_count -= n
            self._pending_nonces -= n
            self._handed_out += n
            return 1
        if self._cur_mid >= self._n_midstates:
            return 0
        n = self._job_end - self._cur_nonce
        if n > max_nonces:
            n = max_nonces
        out.generation = self._generation
        out.midstate_id = self._cur_mid
        out.nonce_start = <uint32_t>self._cur_nonce
        out.nonce_count = n
        self._cur_nonce += n
        if self._cur_nonce >= self._job_end:
            self._cur_mid += 1
            self._cur_nonce = self._job_start
        self._handed_out += n
        return 1

    cdef int _give_back_locked(self, const sgm_wq_unit *u) noexcept nogil:
        cdef uint64_t start = u.nonce_start
        cdef uint64_t end = start + u.nonce_count
        cdef size_t i, new_cap
        cdef sgm_wq_unit *p
        cdef sgm_wq_unit *grown
        if u.nonce_count == 0 or end > _SPACE:
            return SGM_WQ_ERR_COUNT
        if not self._has_job or u.generation != self._generation:
            self._stale_dropped += 1
            return SGM_WQ_STALE
        if u.midstate_id >= self._n_midstates:
            return SGM_WQ_ERR_MIDSTATE
        if start < self._job_start or end > self._job_end:
            return SGM_WQ_ERR_RANGE
        if not (u.midstate_id < self._cur_mid
                or (u.midstate_id == self._cur_mid and end <= self._cur_nonce)):
            return SGM_WQ_ERR_NOT_OUT
        for i in range(self._n_pending):
            p = &self._pending[i]
            if (p.midstate_id == u.midstate_id and start < <uint64_t>p.nonce_start + p.nonce_count
                    and <uint64_t>p.nonce_start < end):
                return SGM_WQ_ERR_OVERLAP
        if self._n_pending > 0:
            p = &self._pending[self._n_pending - 1]
            if p.midstate_id == u.midstate_id:
                if <uint64_t>p.nonce_start + p.nonce_count == start:
                    p.nonce_count += u.nonce_count
                    self._pending_nonces += u.nonce_count
                    self._given_back += u.nonce_count
                    return SGM_WQ_REQUEUED
                if end == p.nonce_start:
                    p.nonce_start = u.nonce_start
                    p.nonce_count += u.nonce_count
                    self._pending_nonces += u.nonce_count
                    self._given_back += u.nonce_count
                    return SGM_WQ_REQUEUED
        if self._n_pending >= self._max_pending:
            return SGM_WQ_ERR_FULL
        if self._n_pending == self._cap_pending:
            new_cap = _INITIAL_CAP if self._cap_pending == 0 else self._cap_pending * 2
            if new_cap > self._max_pending:
                new_cap = self._max_pending
            grown = <sgm_wq_unit *>realloc(self._pending, new_cap * sizeof(sgm_wq_unit))
            if grown == NULL:
                return SGM_WQ_ERR_NOMEM
            self._pending = grown
            self._cap_pending = new_cap
        p = &self._pending[self._n_pending]
        p.generation = self._generation
        p.midstate_id = u.midstate_id
        p.nonce_start = u.nonce_start
        p.nonce_count = u.nonce_count
        self._n_pending += 1
        self._pending_nonces += u.nonce_count
        self._given_back += u.nonce_count
        return SGM_WQ_REQUEUED

    cdef int pull_c(self, uint64_t max_nonces, sgm_wq_unit *out) noexcept nogil:
        """Fill *out with the next unit (at most max_nonces nonces); 1 if filled, 0 if none."""
        cdef int r
        self._acquire()
        r = self._pull_locked(max_nonces, out)
        self._release()
        return r

    cdef int give_back_c(self, const sgm_wq_unit *unit) noexcept nogil:
        """Re-queue *unit: SGM_WQ_REQUEUED, SGM_WQ_STALE, or a negative SGM_WQ_ERR_* code."""
        cdef int r
        self._acquire()
        r = self._give_back_locked(unit)
        self._release()
        return r

    cdef int end_through_c(self, int64_t generation) noexcept nogil:
        """End the current job if its generation is <= ``generation`` (a block was found
        for it: every later pull returns nothing until the next set_job).  1 if ended."""
        cdef int ended = 0
        self._acquire()
        if self._has_job and self._generation <= generation:
            self._has_job = False
            self._clear_pending_locked()
            self._cur_mid = self._n_midstates
            ended = 1
        self._release()
        return ended

    # ------------------------------------------------------------------ Python API

    def set_job(self, generation, n_midstates, nonce_start=0, nonce_end=NONCE_SPACE):
        """Replace the current job atomically; pending given-back units are dropped.

        ``generation`` must be larger than every generation set before on this queue.
        """
        cdef object g = int_arg(generation, "generation")
        cdef object n = int_arg(n_midstates, "n_midstates")
        cdef object s = int_arg(nonce_start, "nonce_start")
        cdef object e = int_arg(nonce_end, "nonce_end")
        if g < 0 or g > MAX_GENERATION:
            raise ValueError(f"generation must be in [0, 2**63 - 1], got {g}")
        if n < 1 or n > MAX_MIDSTATES:
            raise ValueError(f"n_midstates must be in [1, 2**32 - 1], got {n}")
        if s < 0 or s >= NONCE_SPACE:
            raise ValueError(f"nonce_start must be in [0, 2**32), got {s}")
        if e <= s or e > NONCE_SPACE:
            raise ValueError(f"nonce_end must be in (nonce_start, 2**32], got {e} "
                             f"with nonce_start={s}")
        cdef int64_t cg = g
        cdef uint32_t cn = n
        cdef uint64_t cs = s
        cdef uint64_t ce = e
        cdef int64_t previous
        cdef bint ok
        with nogil:
            self._acquire()
            previous = self._generation
            ok = cg > previous
            if ok:
                self._clear_pending_locked()
                self._generation = cg
                self._n_midstates = cn
                self._job_start = cs
                self._job_end = ce
                self._cur_mid = 0
                self._cur_nonce = cs
                self._handed_out = 0
                self._given_back = 0
                self._has_job = True
            self._release()
        if not ok:
            raise ValueError(f"generation must be greater than the previous generation "
                             f"{previous}, got {g}")

    def pull(self, max_nonces):
        """Next unit as (generation, midstate_id, nonce_start, nonce_count), or None.

        1 <= nonce_count <= max_nonces; a unit never crosses a midstate boundary.
        Given-back units of the current generation are handed out before fresh work.
        """
        cdef object m = int_arg(max_nonces, "max_nonces")
        if m < 1:
            raise ValueError(f"max_nonces must be >= 1, got {m}")
        cdef uint64_t cm = m if m < NONCE_SPACE else NONCE_SPACE
        cdef sgm_wq_unit u
        cdef int got
        with nogil:
            got = self.pull_c(cm, &u)
        if not got:
            return None
        return (u.generation, u.midstate_id, u.nonce_start, u.nonce_count)

    def give_back(self, generation, midstate_id, nonce_start, nonce_count):
        """Re-queue the unscanned remainder of a pulled unit.

        Returns True if queued again, False if ``generation`` is not the current one (or
        the queue was flushed) -- the unit is then dropped.  ValueError names the bad
        argument: nonce_count < 1, midstate_id >= n_midstates, a range outside the job's
        nonce range, not yet handed out, or overlapping a unit already given back.
        """
        cdef object g = int_arg(generation, "generation")
        cdef object mid = int_arg(midstate_id, "midstate_id")
        cdef object s = int_arg(nonce_start, "nonce_start")
        cdef object c = int_arg(nonce_count, "nonce_count")
        if g < 0 or g > MAX_GENERATION:
            raise ValueError(f"generation must be in [0, 2**63 - 1], got {g}")
        if mid < 0 or mid > MAX_MIDSTATES:
            raise ValueError(f"midstate_id must be in [0, 2**32 - 1], got {mid}")
        if s < 0 or s >= NONCE_SPACE:
            raise ValueError(f"nonce_start must be in [0, 2**32), got {s}")
        if c < 1 or s + c > NONCE_SPACE:
            raise ValueError(f"nonce_count must be >= 1 with nonce_start + nonce_count "
                             f"<= 2**32, got nonce_count={c} at nonce_start={s}")
        cdef sgm_wq_unit u
        u.generation = g
        u.midstate_id = mid
        u.nonce_start = s
        u.nonce_count = c
        cdef int r
        with nogil:
            r = self.give_back_c(&u)
        if r == SGM_WQ_REQUEUED:
            return True
        if r == SGM_WQ_STALE:
            return False
        exc, msg = _GIVE_BACK_ERRORS[r]
        raise exc(f"{msg} (generation={g}, midstate_id={mid}, nonce_start={s}, "
                  f"nonce_count={c}; job: {self._job_repr()})")

    def flush(self):
        """Drop the job and every pending unit; returns the generation flushed.

        Until the next set_job, pull returns None and every give_back is stale.  The
        counters keep describing the flushed job until then.  Returns -1 if no job was
        ever set.
        """
        cdef int64_t g
        with nogil:
            self._acquire()
            g = self._generation
            self._has_job = False
            self._clear_pending_locked()
            self._cur_mid = self._n_midstates
            self._release()
        return g

    # ------------------------------------------------------------------ introspection

    def stats(self):
        """A consistent snapshot of the queue's state as a dict."""
        cdef bint has_job
        cdef int64_t g
        cdef uint32_t n_mid, cur_mid
        cdef uint64_t js, je, cur_nonce, handed, given, pending, stale
        cdef size_t n_pending
        with nogil:
            self._acquire()
            has_job = self._has_job
            g = self._generation
            n_mid = self._n_midstates
            js = self._job_start
            je = self._job_end
            cur_mid = self._cur_mid
            cur_nonce = self._cur_nonce
            handed = self._handed_out
            given = self._given_back
            pending = self._pending_nonces
            n_pending = self._n_pending
            stale = self._stale_dropped
            self._release()
        fresh = 0
        if has_job and cur_mid < n_mid:
            fresh = (n_mid - cur_mid) * (je - js) - (cur_nonce - js)
        return {
            "has_job": bool(has_job),
            "generation": g,
            "n_midstates": n_mid,
            "nonce_start": js,
            "nonce_end": je,
            "cursor": (cur_mid, cur_nonce) if has_job and cur_mid < n_mid else None,
            "handed_out": handed,
            "given_back": given,
            "returned_pending": pending if has_job else 0,
            "pending_units": n_pending if has_job else 0,
            "remaining": (fresh + pending) if has_job else 0,
            "exhausted": (not has_job) or (fresh == 0 and pending == 0),
            "stale_dropped": stale,
        }

    cdef str _job_repr(self):
        return (f"generation={self._generation}, n_midstates={self._n_midstates}, "
                f"nonces=[{self._job_start}, {self._job_end}), has_job={bool(self._has_job)}")

    @property
    def generation(self):
        """Generation of the current (or last flushed) job; -1 before the first set_job."""
        return self.stats()["generation"]

    @property
    def has_job(self):
        return self.stats()["has_job"]

    @property
    def n_midstates(self):
        return self.stats()["n_midstates"]

    @property
    def handed_out(self):
        """Nonces handed out by pull for the current job (re-issued given-back ones included)."""
        return self.stats()["handed_out"]

    @property
    def given_back(self):
        """Nonces accepted back by give_back for the current job."""
        return self.stats()["given_back"]

    @property
    def returned_pending(self):
        """Nonces given back and not yet handed out again."""
        return self.stats()["returned_pending"]

    @property
    def pending_units(self):
        """Separate given-back units waiting (adjacent ones are merged)."""
        return self.stats()["pending_units"]

    @property
    def remaining(self):
        """Nonces a sequence of pulls could still hand out (fresh + given back)."""
        return self.stats()["remaining"]

    @property
    def exhausted(self):
        """True when a pull would return None: no job, or nothing fresh or given back left."""
        return self.stats()["exhausted"]

    @property
    def stale_dropped(self):
        """give_back calls dropped as stale over the queue's lifetime."""
        return self.stats()["stale_dropped"]

    @property
    def max_pending(self):
        return self._max_pending

    def __repr__(self):
        st = self.stats()
        return (f"WorkQueue(generation={st['generation']}, has_job={st['has_job']}, "
                f"n_midstates={st['n_midstates']}, nonces=[{st['nonce_start']}, "
                f"{st['nonce_end']}), cursor={st['cursor']}, handed_out={st['handed_out']}, "
                f"returned_pending={st['returned_pending']})")

