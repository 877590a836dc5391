# cython: language_level=3
"""C-level view of sgm's batch queue (for cimport by a native worker loop).

A worker that holds a reference to a WorkQueue may call ``pull_c`` / ``give_back_c``
inside ``with nogil:``; both take the queue's own C lock and touch no Python objects.
"""
from cpython.pythread cimport PyThread_type_lock
from libc.stdint cimport int64_t, uint32_t, uint64_t


cdef struct sgm_wq_unit:
    int64_t generation
    uint32_t midstate_id
    uint32_t nonce_start
    uint64_t nonce_count     # 1 .. 2**32


# Return codes of WorkQueue.give_back_c (pull_c returns 1 = unit, 0 = nothing).
cdef enum:
    SGM_WQ_REQUEUED = 1       # given-back unit queued for re-issue
    SGM_WQ_STALE = 0          # generation is not current (or no job): dropped
    SGM_WQ_ERR_COUNT = -1     # nonce_count == 0 or range runs past 2**32
    SGM_WQ_ERR_MIDSTATE = -2  # midstate_id >= n_midstates
    SGM_WQ_ERR_RANGE = -3     # range not inside the job's [nonce_start, nonce_end)
    SGM_WQ_ERR_NOT_OUT = -4   # range not yet handed out (beyond the cursor)
    SGM_WQ_ERR_OVERLAP = -5   # range overlaps a unit already given back and pending
    SGM_WQ_ERR_FULL = -6      # too many pending given-back units
    SGM_WQ_ERR_NOMEM = -7     # realloc failed


cdef class WorkQueue:
    cdef PyThread_type_lock _lock
    # current job
    cdef bint _has_job
    cdef int64_t _generation          # -1 before the first set_job
    cdef uint32_t _n_midstates
    cdef uint64_t _job_start          # nonce range of the job: [_job_start, _job_end)
    cdef uint64_t _job_end
    # fresh-work cursor: next midstate / nonce never handed out
    cdef uint32_t _cur_mid            # == _n_midstates when the fresh space is used up
    cdef uint64_t _cur_nonce
    # given-back units of the current generation (LIFO stack, growable up to _max_pending)
    cdef sgm_wq_unit *_pending
    cdef size_t _n_pending
    cdef size_t _cap_pending
    cdef size_t _max_pending
    cdef uint64_t _pending_nonces
    # counters
    cdef uint64_t _handed_out         # nonces handed out for the current job (re-issues included)
    cdef uint64_t _given_back         # nonces accepted back for the current job
    cdef uint64_t _stale_dropped      # stale give_back calls dropped (lifetime)

    # internal helpers (the *_locked ones expect the lock to be held)
    cdef void _acquire(self) noexcept nogil
    cdef void _release(self) noexcept nogil
    cdef void _clear_pending_locked(self) noexcept nogil
    cdef int _pull_locked(self, uint64_t max_nonces, sgm_wq_unit *out) noexcept nogil
    cdef int _give_back_locked(self, const sgm_wq_unit *u) noexcept nogil
    cdef str _job_repr(self)

    # public C API: take the lock themselves, safe to call without the GIL
    cdef int pull_c(self, uint64_t max_nonces, sgm_wq_unit *out) noexcept nogil
    cdef int give_back_c(self, const sgm_wq_unit *unit) noexcept nogil
    cdef int end_through_c(self, int64_t generation) noexcept nogil
