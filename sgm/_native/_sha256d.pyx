# cython: language_level=3, boundscheck=False, wraparound=False
"""sgm's native SHA-256d core: midstate and nonce scanning.

Python decides, native code loops: one call scans a whole nonce range with the GIL
released and comes back once with the nonces that meet the target.  Several kernels
(portable C, SHA-NI, AVX2, AVX-512) implement the same contract; the fastest one this CPU
supports is the default and any available one can be forced by name.
"""
import os
import time

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint32_t, uint64_t, uint8_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from sgm._native._args cimport SGM_NONCE_SPACE, int_arg

#: Most nonces one scan returns unless max_results says otherwise.  When a scan finds
#: more, it stops at the first one that does not fit and reports truncated=True and how
#: far it got (``scanned``), so the caller resumes from there: nothing is dropped.
DEFAULT_MAX_RESULTS = 65536
#: Upper bound for max_results.
MAX_RESULTS_LIMIT = 1 << 24
#: The kernels look at the abort flag at least this often (in nonces).
ABORT_STRIDE = SGM_ABORT_STRIDE

#: Nonces of one midstate (the 32-bit header nonce); defined once in sgm_limits.h.
NONCE_SPACE = SGM_NONCE_SPACE
_TARGET_MAX = (1 << 256) - 1


cdef class AbortFlag:
    """A flag another thread raises to stop running scans at their next check."""

    def __cinit__(self):
        sgm_flag_store(&self.flag, 0)

    def set(self) -> None:
        sgm_flag_store(&self.flag, 1)

    def clear(self) -> None:
        sgm_flag_store(&self.flag, 0)

    def is_set(self) -> bool:
        return sgm_flag_load(&self.flag) != 0

    def __repr__(self):
        return f"AbortFlag({'set' if self.is_set() else 'clear'})"


cdef class ScanResult:
    """Outcome of one scan.

    nonces: hits in ascending order; scanned: nonces completely examined from ``start``
    (every hit below start+scanned is in ``nonces``); aborted: stopped by the abort flag;
    truncated: stopped because ``max_results`` hits were already stored; impl: kernel used.
    """
    cdef readonly list nonces
    cdef readonly object scanned
    cdef readonly bint aborted
    cdef readonly bint truncated
    cdef readonly str impl

    def __init__(self, list nonces, scanned, bint aborted, bint truncated, str impl):
        self.nonces = nonces
        self.scanned = scanned
        self.aborted = aborted
        self.truncated = truncated
        self.impl = impl

    @property
    def complete(self) -> bool:
        return not (self.aborted or self.truncated)

    def __repr__(self):
        return (f"ScanResult(nonces={self.nonces!r}, scanned={self.scanned}, "
                f"aborted={self.aborted}, truncated={self.truncated}, impl={self.impl!r})")


cdef bytes _as_bytes(object value, str name, Py_ssize_t length):
    if isinstance(value, str) or not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes of length {length}, not {type(value).__name__}")
    cdef bytes b = bytes(value)
    if len(b) != length:
        raise ValueError(f"{name} must be {length} bytes long, got {len(b)}")
    return b


def _impl_names():
    cdef int i
    return [SGM_IMPLS[i].name.decode() for i in range(SGM_N_IMPLS)]


def all_implementations() -> list:
    """Every kernel compiled into this build, fastest first (available or not)."""
    return _impl_names()


def available_implementations() -> list:
    """The kernels this CPU can run, fastest first."""
    cdef int i
    return [SGM_IMPLS[i].name.decode() for i in range(SGM_N_IMPLS) if sgm_impl_available(i)]


_fastest = None
_calibration = {}
_chooser = None


def default_implementation() -> str:
    """The kernel scan() uses when none is named: the fastest available on this CPU.

    The environment variable SGM_IMPL names a kernel to use instead (if this CPU supports
    it).  Otherwise the chooser registered with ``_set_chooser`` decides (sgm keeps one
    calibration per CPU model and build in the user cache directory, so the pick does not
    change from launch to launch); without one, each kernel is measured for ~20 ms.
    """
    global _fastest
    if _fastest is None:
        forced = os.environ.get("SGM_IMPL")
        if forced:
            _impl_index(forced)  # raises a clear error for an unknown or unsupported name
            _fastest = forced
        elif _chooser is not None:
            name = _chooser()
            _impl_index(name)
            _fastest = name
        else:
            _fastest = _measure_fastest()
    return _fastest


def _set_chooser(chooser) -> None:
    """Register the function that picks the default kernel (called at most once)."""
    global _chooser
    _chooser = chooser


def _reset_default(rates=None) -> None:
    """Forget the default (the next default_implementation() decides again); ``rates``
    replaces what calibration() reports."""
    global _fastest, _calibration
    _fastest = None
    _calibration = dict(rates or {})


def calibration() -> dict:
    """hashes/s each kernel reached when the default was chosen (empty before that or when
    SGM_IMPL forced the choice)."""
    return dict(_calibration)


def _measure_fastest(double seconds=0.02) -> str:
    names = available_implementations()
    candidates = [n for n in names if n != "scalar"] or names
    if len(candidates) == 1:
        return candidates[0]
    midstate = bytes(32)
    tail = bytes(12)
    for name in candidates:
        scan(midstate, tail, 0, 1 << 12, 0, impl=name)  # warm up
        done = 0
        t0 = time.perf_counter()
        while True:
            done += scan(midstate, tail, done, 1 << 15, 0, impl=name).scanned
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        _calibration[name] = done / elapsed
    return max(candidates, key=_calibration.get)


def implementation_lanes(str name) -> int:
    """Nonces the named kernel hashes together."""
    return SGM_IMPLS[_impl_index(name)].lanes


def cpu_features() -> dict:
    """What CPUID says about the features the kernels use."""
    cdef int f = sgm_cpu_features()
    return {"sse4.1": bool(f & 1), "sha-ni": bool(f & 2), "avx2": bool(f & 4),
            "avx512f": bool(f & 8), "avx": bool(f & 16)}


cdef int _impl_index(object name) except -1:
    if not isinstance(name, str):
        raise TypeError(f"impl must be a str, not {type(name).__name__}")
    names = _impl_names()
    if name not in names:
        raise ValueError(f"impl {name!r} is unknown; built: {', '.join(names)}")
    cdef int i = names.index(name)
    if not sgm_impl_available(i):
        raise ValueError(f"impl {name!r} is not supported by this CPU; available: "
                         f"{', '.join(available_implementations())}")
    return i


def sha256_midstate(block) -> bytes:
    """SHA-256 state after compressing one 64-byte block (no padding).

    Returned as 32 bytes: the eight state words, each little-endian (the layout miners
    and pools exchange midstates in).
    """
    cdef bytes b = _as_bytes(block, "block", 64)
    cdef uint32_t st[8]
    cdef const uint8_t *p = <const uint8_t *> b
    with nogil:
        sgm_midstate(p, st)
    return PyBytes_FromStringAndSize(<char *> st, 32)  # little-endian host (x86, aarch64)


cdef int _fill_work(sgm_work *wk, bytes ms, bytes tl, object target) except -1:
    cdef int i
    cdef const uint8_t *m = <const uint8_t *> ms
    cdef const uint8_t *t = <const uint8_t *> tl
    memset(wk, 0, sizeof(sgm_work))
    for i in range(8):
        wk.midstate[i] = (<uint32_t> m[4 * i]) | (<uint32_t> m[4 * i + 1] << 8) | \
            (<uint32_t> m[4 * i + 2] << 16) | (<uint32_t> m[4 * i + 3] << 24)
    for i in range(3):
        wk.tail[i] = (<uint32_t> t[4 * i] << 24) | (<uint32_t> t[4 * i + 1] << 16) | \
            (<uint32_t> t[4 * i + 2] << 8) | (<uint32_t> t[4 * i + 3])
    for i in range(8):
        wk.target[i] = <uint32_t> ((target >> (32 * i)) & 0xFFFFFFFF)
    sgm_work_prepare(wk)
    return 0


def scan(midstate, tail, start, count, target, *, impl=None, AbortFlag abort=None,
         max_results=DEFAULT_MAX_RESULTS) -> ScanResult:
    """Scan nonces start .. start+count-1 of one header and return those that meet target.

    midstate: 32 bytes from sha256_midstate(header[0:64]); tail: header[64:76] (merkle
    root tail, ntime, nbits); start: first nonce (0 .. 2^32-1); count: how many
    (start + count <= 2^32); target: int, a hit is sha256d(header) read as a little-endian
    256-bit number <= target; impl: kernel name (default: fastest available);
    abort: an AbortFlag another thread may raise to stop the scan within ~1 ms;
    max_results: stop (truncated=True) rather than drop hits beyond this many.
    The GIL is released for the whole scan.
    """
    cdef bytes ms = _as_bytes(midstate, "midstate", 32)
    cdef bytes tl = _as_bytes(tail, "tail", 12)
    int_arg(start, "start", 0, NONCE_SPACE - 1)
    int_arg(count, "count", 0, NONCE_SPACE)
    if start + count > NONCE_SPACE:
        raise ValueError(f"start + count must be <= 2^32 (the nonce space), got "
                         f"start={start} count={count}")
    int_arg(target, "target", 0, _TARGET_MAX)
    int_arg(max_results, "max_results", 1, MAX_RESULTS_LIMIT)
    cdef int idx = _impl_index(impl) if impl is not None else _impl_index(default_implementation())
    cdef sgm_work wk
    _fill_work(&wk, ms, tl, target)
    cdef uint32_t c_start = <uint32_t> start
    cdef uint64_t c_count = <uint64_t> count
    cdef uint32_t cap = <uint32_t> max_results
    if c_count < cap:
        cap = <uint32_t> c_count if c_count > 0 else 1
    cdef uint32_t *out = <uint32_t *> malloc(cap * sizeof(uint32_t))
    if out == NULL:
        raise MemoryError("scan result buffer")
    cdef sgm_scan_result res
    cdef int local_abort = 0
    cdef const volatile int *ap = &abort.flag if abort is not None else &local_abort
    cdef sgm_scan_fn fn = SGM_IMPLS[idx].fn
    cdef uint32_t k
    try:
        with nogil:
            fn(&wk, c_start, c_count, out, cap, ap, &res)
        nonces = [out[k] for k in range(res.n_found)]
    finally:
        free(out)
    return ScanResult(nonces, res.done, res.status == SGM_SCAN_ABORTED,
                      res.status == SGM_SCAN_FULL, SGM_IMPLS[idx].name.decode())


def opencl_args(midstate, tail) -> tuple:
    """The OpenCL kernel's 26 nonce-independent arguments of one header (midstate of
    header[0:64], tail header[64:76]), from the same precomputation the CPU kernels use."""
    cdef bytes ms = _as_bytes(midstate, "midstate", 32)
    cdef bytes tl = _as_bytes(tail, "tail", 12)
    cdef sgm_work wk
    _fill_work(&wk, ms, tl, 0)
    cdef uint32_t out[26]
    sgm_opencl_args(&wk, out)
    return tuple(int(out[k]) for k in range(SGM_OPENCL_ARGS))


def sha256d_final_state(midstate, tail, nonce) -> bytes:
    """sha256d of the header (midstate, tail, nonce) via the native scalar path: 32 hash bytes
    (the same bytes hashlib's sha256(sha256(header)).digest() gives).  For tests and re-checks."""
    cdef bytes ms = _as_bytes(midstate, "midstate", 32)
    cdef bytes tl = _as_bytes(tail, "tail", 12)
    int_arg(nonce, "nonce", 0, NONCE_SPACE - 1)
    cdef sgm_work wk
    _fill_work(&wk, ms, tl, 0)
    cdef uint32_t h[8]
    sgm_sha256d_state(&wk, <uint32_t> nonce, h)
    return b"".join(int(h[k]).to_bytes(4, "big") for k in range(8))
