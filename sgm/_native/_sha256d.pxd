# cython: language_level=3
"""C-level declarations of the sgm scan kernels (for cimport by other native modules)."""
from libc.stdint cimport uint32_t, uint64_t, uint8_t

cdef extern from "include/sgm_dispatch.h" nogil:
    ctypedef struct sgm_scan_result:
        uint64_t done
        uint32_t n_found
        int status

    ctypedef struct sgm_work:
        uint32_t midstate[8]
        uint32_t tail[3]
        uint32_t target[8]

    ctypedef void (*sgm_scan_fn)(const sgm_work *w, uint32_t start, uint64_t count,
                                 uint32_t *out, uint32_t cap, const volatile int *abort,
                                 sgm_scan_result *res)

    ctypedef struct sgm_impl:
        const char *name
        int lanes
        int needs
        sgm_scan_fn fn

    const sgm_impl SGM_IMPLS[]
    int SGM_N_IMPLS
    int SGM_SCAN_DONE, SGM_SCAN_ABORTED, SGM_SCAN_FULL
    unsigned int SGM_ABORT_STRIDE
    int sgm_impl_available(int i)
    int sgm_cpu_features()
    void sgm_midstate(const uint8_t *block, uint32_t *out)
    void sgm_work_prepare(sgm_work *wk)
    void sgm_sha256d_state(const sgm_work *wk, uint32_t nonce, uint32_t *out)
    int sgm_flag_load(const volatile int *p)
    void sgm_flag_store(volatile int *p, int v)
    int SGM_OPENCL_ARGS
    void sgm_opencl_args(const sgm_work *wk, uint32_t *out)


cdef class AbortFlag:
    cdef int flag
