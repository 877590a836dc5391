"""OpenCL devices: sgm's SHA-256d kernel (``kernels/sha256d.cl``) on any OpenCL device.

* :func:`discover` -- every device of every OpenCL platform, as a DeviceInfo and its handle.
* :func:`kernel_path` -- ``sha256d.cl`` in an installed wheel (``sgm/kernels/``) or in a
  source checkout (``kernels/``, the source of truth).
* :class:`ProgramCache` -- compiled programs on disk (the user cache directory), keyed by
  platform, device, driver version, kernel source hash and build options.
* :class:`OpenCLScanner` -- one device's context, in-order queue, program and result
  buffers: enqueues launches, waits for them without holding the GIL and turns their
  candidates into nonces (the kernel pre-filters on the hash's top word, the host decides
  on the full target).  :meth:`OpenCLScanner.scan_range` is an exact range scan.
* :class:`OpenCLDevice` -- the scheduler-facing :class:`~sgm.devices.base.Device`: launches
  pipelined within and across batches (the next batch is pulled and launched before the
  current one ends), the global size adapted to a target kernel time, and an OpenCL error
  stops this device alone (its unscanned work goes back to the queue).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from sgm import _native
from sgm._native import NONCE_SPACE, AbortFlag
from sgm.devices import DeviceInfo, DeviceSelectionError
from sgm.devices.base import BatchResult, Device
from sgm.work import Batch

try:  # optional dependency: pip install 'sgm[opencl]'
    import pyopencl as cl  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - exercised where pyopencl is missing
    cl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

KERNEL_FILE = "sha256d.cl"
KERNEL_NAME = "sgm_sha256d_scan"
INSTALL_HINT = ("install an OpenCL runtime: pip install 'sgm[opencl]' for pyopencl plus your "
                "GPU's OpenCL driver, or pip install 'pyopencl[pocl]' for PoCL's CPU device")

#: Candidates one launch can return; more is an overflow (the launch is rescanned in pieces).
RESULT_CAPACITY = 4095
#: Result words read back with every launch (counter + first candidates); more cost a read.
RESULT_PREFIX = 64
#: Launches in flight at once (the device never waits for the host between launches).
DEFAULT_DEPTH = 2
#: Target time of one launch: GPUs switch jobs within ~2 launches; a CPU device (PoCL) has
#: a larger per-launch cost, so its launches are longer.
KERNEL_TIME_GPU = 0.005
KERNEL_TIME_CPU = 0.02
MAX_LAUNCH = 1 << 30
#: A batch stops early once it has this many candidates (as CPU batches do).
MAX_CANDIDATES_PER_BATCH = 4096
_POLL = 0.0002          # shortest sleep while waiting for a launch past its expected end
_DECAY = 0.8            # weight of the past in the rate (per launch)
_ZERO = np.zeros(1, dtype=np.uint32)     # the pattern that resets a result counter
_COMPLETE = 0           # CL_COMPLETE

_M = 0xFFFFFFFF
_K = (0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786)


class OpenCLUnavailable(RuntimeError):
    """No usable OpenCL runtime (pyopencl missing, no platform, or no device)."""


class OpenCLBuildError(RuntimeError):
    """The kernel could not be built (or loaded) for a device."""


def require_opencl() -> Any:
    """The pyopencl module, or OpenCLUnavailable saying what to install."""
    if cl is None:
        raise OpenCLUnavailable(f"pyopencl is not installed: {INSTALL_HINT}")
    return cl


def opencl_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the OpenCL runtime or device failed'."""
    return (cl.Error,) if cl is not None else ()


# --------------------------------------------------------------------------- discovery
def device_type_name(dev: Any) -> str:
    t = int(dev.type)
    if t & cl.device_type.GPU:
        return "GPU"
    if t & cl.device_type.ACCELERATOR:
        return "accelerator"
    if t & cl.device_type.CPU:
        return "CPU"
    return "other"


def discover() -> tuple[list[tuple[DeviceInfo, Any]], str | None]:
    """Every OpenCL device on every platform: [(info, pyopencl.Device)], or ([], reason)."""
    if cl is None:
        return [], f"pyopencl is not installed ({INSTALL_HINT})"
    try:
        platforms = cl.get_platforms()
    except Exception as exc:  # noqa: BLE001 - LogicError/RuntimeError without an ICD
        return [], f"no OpenCL platform ({exc}); {INSTALL_HINT}"
    found: list[tuple[DeviceInfo, Any]] = []
    problems: list[str] = []
    for p_index, plat in enumerate(platforms):
        try:
            devs = plat.get_devices()
        except Exception as exc:  # noqa: BLE001 - a platform without devices raises
            problems.append(f"{plat.name.strip()}: {exc}")
            continue
        for d_index, dev in enumerate(devs):
            kind = device_type_name(dev)
            found.append((DeviceInfo(
                name=f"opencl{p_index}.{d_index}",
                kind="opencl",
                description=f"{dev.name.strip()} ({plat.name.strip()})",
                compute_units=int(dev.max_compute_units),
                implementations=[KERNEL_FILE],
                default_impl=KERNEL_FILE,
                platform=plat.name.strip(),
                device_type=kind,
                driver_version=str(dev.driver_version).strip(),
                used_by_default=kind == "GPU",
            ), dev))
    if found:
        return found, None
    return [], "OpenCL platforms have no devices" + (f" ({'; '.join(problems)})" if problems else "")


# --------------------------------------------------------------------------- kernel source
def kernel_path(package: Path | None = None) -> Path:
    """sha256d.cl: sgm/kernels/ in an installed wheel, kernels/ in a source checkout
    (``package``: the sgm package directory, this one by default)."""
    package = package or Path(__file__).resolve().parents[1]
    candidates = [package / "kernels" / KERNEL_FILE, package.parent / "kernels" / KERNEL_FILE]
    for path in candidates:
        if path.is_file():
            return path
    raise OpenCLBuildError(f"{KERNEL_FILE} not found (looked in "
                           f"{', '.join(str(p.parent) for p in candidates)})")


def choose_geometry(dev: Any, vector_width: int | None = None, worksize: int | None = None,
                    builtins: bool | None = None) -> tuple[int, int, bool]:
    """(vector width, work-group size, use built-ins) for a device.

    GPUs run one nonce per work-item (their lanes are the work-items) with the rotate() /
    bitselect() built-ins (one instruction each there); CPU devices get as many nonces per
    work-item as their preferred int vector holds (8 with AVX2), and plain shifts, which
    their compilers turn into the same instructions (PoCL does not inline the built-ins).
    SGM_OPENCL_VECTOR / SGM_OPENCL_WORKSIZE / SGM_OPENCL_BUILTINS (0/1) override the choice.
    """
    kind = device_type_name(dev)
    env_vw = os.environ.get("SGM_OPENCL_VECTOR")
    env_ws = os.environ.get("SGM_OPENCL_WORKSIZE")
    env_bi = os.environ.get("SGM_OPENCL_BUILTINS")
    if vector_width is None and env_vw:
        vector_width = int(env_vw)
    if worksize is None and env_ws:
        worksize = int(env_ws)
    if builtins is None:
        builtins = env_bi not in ("0", "") if env_bi is not None else kind == "GPU"
    if vector_width is None:
        if kind == "GPU":
            vector_width = 1
        else:
            pref = max(1, int(dev.preferred_vector_width_int or 1))
            vector_width = 8 if pref >= 8 else 4 if pref >= 4 else 2 if pref >= 2 else 1
    if vector_width not in (1, 2, 4, 8):
        raise ValueError(f"vector width must be 1, 2, 4 or 8, got {vector_width}")
    max_ws = int(dev.max_work_group_size)
    if worksize is None:
        worksize = 256 if kind == "GPU" else 64
    if not 1 <= worksize <= max_ws:
        raise ValueError(f"work-group size must be in 1..{max_ws} on this device, got {worksize}")
    return vector_width, worksize, builtins


# --------------------------------------------------------------------------- program cache
def default_cache_dir() -> Path:
    try:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("sgm", appauthor=False))
    except ImportError:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sgm"
    return base / "opencl"


class ProgramCache:
    """Compiled programs on disk, one file per (device, driver, source, options).

    A file is ``MAGIC``, the SHA-256 of the binary, then the binary.  An entry that does
    not verify, or that the driver refuses to load, is rebuilt from source and replaced
    (never fatal); a cache directory that cannot be written only costs the next start a
    compile.  ``origin`` of the last :meth:`load` says which happened.
    """

    MAGIC = b"sgm-opencl-program-1\n"

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    @staticmethod
    def key(dev: Any, source: str, options: str) -> str:
        plat = dev.platform
        ident = {
            "platform": plat.name, "platform_version": plat.version, "vendor": dev.vendor,
            "device": dev.name, "device_version": dev.version,
            "driver": dev.driver_version, "pyopencl": cl.VERSION_TEXT,
            "source_sha256": hashlib.sha256(source.encode()).hexdigest(), "options": options,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:40]

    def path(self, dev: Any, source: str, options: str) -> Path:
        return self.directory / f"{self.key(dev, source, options)}.clbin"

    def load(self, ctx: Any, dev: Any, source: str, options: str) -> tuple[Any, str]:
        """(built program, origin): origin is "cache", "built" or "rebuilt" (a bad entry
        was replaced)."""
        path = self.path(dev, source, options)
        origin = "built"
        if path.exists():
            try:
                binary = self._read(path)
                prg = cl.Program(ctx, [dev], [binary]).build(options=options, devices=[dev])
                cl.Kernel(prg, KERNEL_NAME)          # the kernel is really there
                return prg, "cache"
            except Exception as exc:  # noqa: BLE001 - any failure: rebuild from source
                log.warning("OpenCL program cache entry %s is unusable (%s); rebuilding it",
                            path.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                origin = "rebuilt"
                try:
                    path.unlink()
                except OSError:
                    pass
        try:
            # cache_dir=False: no pyopencl cache besides this one (pyopencl's hint says str)
            prg = cl.Program(ctx, source).build(options=options, devices=[dev],
                                                cache_dir=False)  # type: ignore[arg-type]
        except cl.Error as exc:
            raise OpenCLBuildError(_first_lines(str(exc))) from exc
        self._store(path, prg)
        return prg, origin

    def _read(self, path: Path) -> bytes:
        data = path.read_bytes()
        head = len(self.MAGIC)
        if data[:head] != self.MAGIC or len(data) < head + 32:
            raise ValueError("not an sgm program file")
        digest, binary = data[head:head + 32], data[head + 32:]
        if hashlib.sha256(binary).digest() != digest or not binary:
            raise ValueError("checksum mismatch")
        return binary

    def _store(self, path: Path, prg: Any) -> None:
        try:
            binaries = prg.get_info(cl.program_info.BINARIES)
            binary = bytes(binaries[0]) if binaries else b""
            if not binary:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".clbin")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(self.MAGIC + hashlib.sha256(binary).digest() + binary)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, cl.Error) as exc:
            log.info("OpenCL program not cached (%s): the next start compiles again", exc)


def _first_lines(text: str, n: int = 6) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[:n]) + (" ..." if len(lines) > n else "")


# --------------------------------------------------------------------------- precomputation
def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M


def _bsig0(x: int) -> int:
    return _rotr(x, 2) ^ _rotr(x, 13) ^ _rotr(x, 22)


def _bsig1(x: int) -> int:
    return _rotr(x, 6) ^ _rotr(x, 11) ^ _rotr(x, 25)


def _ssig0(x: int) -> int:
    return _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)


def _ssig1(x: int) -> int:
    return _rotr(x, 17) ^ _rotr(x, 19) ^ (x >> 10)


def precompute(midstate: bytes, tail: bytes) -> tuple[int, ...]:
    """The 27 nonce-independent kernel arguments of one work unit (see sha256d.cl).

    midstate: 8 little-endian state words after header[0:64] (as sgm's native core gives
    it); tail: header[64:76].  The last one is the constant 1 (`one`): the NVIDIA build
    multiplies by it to put additions on the FMA pipe, and must not see it as a literal.
    """
    ms = struct.unpack("<8I", midstate)
    w = struct.unpack(">3I", tail)
    a, b, c, d, e, f, g, h = ms
    for i in range(3):   # block 2, rounds 0..2: W0..W2 = merkle tail, ntime, nbits
        t1 = (h + _bsig1(e) + ((e & f) ^ (~e & g)) + _K[i] + w[i]) & _M
        t2 = (_bsig0(a) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M, c, b, a, (t1 + t2) & _M
    t1_3 = (h + _bsig1(e) + ((e & f) ^ (~e & g)) + _K[3]) & _M    # round 3 without W3
    big_a4 = (t1_3 + _bsig0(a) + ((a & b) ^ (a & c) ^ (b & c))) & _M
    big_e4 = (d + t1_3) & _M
    r4 = (g + _K[4] + 0x80000000) & _M          # h of round 4 is g after round 2 ...
    r5 = (f + _K[5]) & _M                       # ... of round 5 f, of round 6 e
    r6 = (e + _K[6]) & _M
    w16 = (_ssig0(w[1]) + w[0]) & _M                           # s1(W14) = W9 = 0
    w17 = (_ssig1(640) + _ssig0(w[2]) + w[1]) & _M             # W10 = 0
    w18p = (_ssig1(w16) + w[2]) & _M                           # + s0(W3)
    w19p = (_ssig1(w17) + _ssig0(0x80000000)) & _M             # + W3
    k16 = (_K[16] + w16) & _M
    k17 = (_K[17] + w17) & _M
    p31 = (_ssig0(w16) + 640) & _M
    p32 = (_ssig0(w17) + w16) & _M
    return (*ms, a, b, c, e, f, big_a4, big_e4, r4, r5, r6,
            w16, w17, k16, k17, w18p, w19p, p31, p32, 1)


# --------------------------------------------------------------------------- scanner
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
                 source_path: Path | str | None = None) -> None:
        require_opencl()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.device = dev
        self.device_type = device_type_name(dev)
        self.vector_width, self.worksize, self.builtins = choose_geometry(
            dev, vector_width, worksize, builtins)
        self.step = self.vector_width * self.worksize          # nonces per work-group
        self.kernel_time = kernel_time or (KERNEL_TIME_GPU if self.device_type == "GPU"
                                           else KERNEL_TIME_CPU)
        self.depth = depth
        self.capacity = capacity
        self.options = (f"-D VECTOR_WIDTH={self.vector_width} -D WORKSIZE={self.worksize} "
                        f"-D USE_BUILTINS={int(self.builtins)}")
        if source is None:
            source = Path(source_path or kernel_path()).read_text(encoding="utf-8")
        self.source = source
        self.cache = cache or ProgramCache()
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
        return status == _COMPLETE

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

    def close(self) -> None:
        """Wait for what is queued and forget it."""
        try:
            self.queue.finish()
        except cl.Error:
            pass
        self.inflight.clear()
        self._orphans.clear()
        self._free = list(self._slots)


# --------------------------------------------------------------------------- the device
class _WakingAbortFlag(AbortFlag):
    """An AbortFlag that also wakes the host thread sleeping on ``wake``."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self.wake = wake

    def set(self) -> None:
        super().set()
        self.wake.set()


class OpenCLDevice(Device):
    """One OpenCL device under the scheduler: one host thread, launches in flight."""

    kind = "opencl"
    nice_worker = False   # sleeps on events; must wake at once to keep the device fed

    def __init__(self, name: str, dev: Any, *, description: str = "",
                 scanner: OpenCLScanner | None = None, **scanner_options: Any) -> None:
        self.scanner = scanner or OpenCLScanner(dev, **scanner_options)
        super().__init__(name, KERNEL_FILE, granule=self.scanner.step)
        self.description = description or str(dev.name).strip()
        self.device_type = self.scanner.device_type      # "GPU", "CPU", ...
        self.abort = _WakingAbortFlag(self.scanner.wake)
        #: raised by every clean job: a batch pulled ahead of time is stale once it is set
        self._stale = AbortFlag()
        self._ahead: ScanJob | None = None        # the next batch, pulled and launched early
        self._current: ScanJob | None = None
        self.failure: str | None = None
        self.host_cpu_s = 0.0                     # CPU time of the host thread
        self.host_wall_s = 0.0
        self._cpu0 = self._wall0 = 0.0

    # ------------------------------------------------------------ lifecycle
    def calibrate(self, seconds: float = 0.05) -> float:
        try:
            return self.scanner.calibrate(seconds)
        except opencl_errors() as exc:
            self._fail(exc)
            return 1.0

    def start(self, scheduler: Any) -> None:
        scheduler.register_abort_flag(self._stale)
        super().start(scheduler)
        if self.failure is not None:
            self.set_enabled(False, detail=self.failure)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self._scheduler is not None:
            self._scheduler.unregister_abort_flag(self._stale)

    @property
    def enabled(self) -> bool:
        return self.failure is None and super().enabled

    def set_enabled(self, enabled: bool, detail: str = "") -> None:
        if enabled and self.failure is not None:
            log.warning("%s stays stopped after its OpenCL error: %s", self.name, self.failure)
            return
        super().set_enabled(enabled, detail)

    @property
    def host_cpu_share(self) -> float:
        """CPU time of the host thread / its wall time (0..1: the share of one core)."""
        return self.host_cpu_s / self.host_wall_s if self.host_wall_s > 0 else 0.0

    # ------------------------------------------------------------ the worker's hooks
    def _loop(self) -> None:
        self._cpu0, self._wall0 = time.thread_time(), time.perf_counter()
        try:
            super()._loop()
        finally:
            self._release_ahead()
            self._drop_current()
            self._account()
            if self.failure is None:   # a lost device may not even finish its queue
                self.scanner.close()

    def _account(self) -> None:
        self.host_cpu_s = time.thread_time() - self._cpu0
        self.host_wall_s = time.perf_counter() - self._wall0

    def _next_batch(self) -> Batch | None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if not self._stale.is_set() and self.enabled and not self._terminate:
                self._current = ahead
                return ahead.tag
            self._give_back(ahead)
        return super()._next_batch()

    def _on_disabled(self) -> None:
        self._release_ahead()
        self._drop_current()

    def _drop_current(self) -> None:
        """Forget the launches of a batch taken from ahead that was not run after all (the
        worker gave it back instead: terminating or disabled)."""
        current, self._current = self._current, None
        if current is not None:
            self.scanner.drop(current)

    # ------------------------------------------------------------ batches
    def run_batch(self, batch: Batch) -> BatchResult:
        current, self._current = self._current, None
        if current is not None and current.tag is batch:
            job = current               # pulled ahead: its first launches are running
        else:
            if current is not None:
                self.scanner.drop(current)
            job = self.scanner.job(batch.work.midstate, batch.work.tail, batch.start,
                                   batch.count, batch.target, tag=batch)
        try:
            self._run(job)
        except opencl_errors() as exc:
            self._fail(exc)
        except BaseException:
            self._release_ahead()
            self.scanner.drop(job)
            raise
        # the kernel only pre-filters; a nonce it claimed that is no candidate at all goes to
        # the scheduler too, whose re-check counts it as this device's hardware error
        nonces = sorted(job.nonces + job.bad)
        self._account()
        return BatchResult(job.done, nonces)

    def _run(self, job: ScanJob) -> None:
        sc = self.scanner
        try:
            while job.done < job.count:
                sc.fill(job)
                if job.launched == job.count and self._ahead is None \
                        and len(sc.inflight) < sc.depth:
                    self._pull_ahead()
                if self.abort.is_set():
                    break
                head = sc.inflight[0]
                if head.job is not job:
                    # left over from a batch not run (never read), or -- never expected --
                    # the batch pulled ahead in front of this one's work: hand that back
                    if head.job is self._ahead:
                        self._release_ahead()
                    else:
                        sc.drop(head.job)
                    continue
                if not sc.wait(head, self.abort.is_set):
                    break
                sc.collect(head)
                if len(job.nonces) >= MAX_CANDIDATES_PER_BATCH:
                    break
            sc.harvest(job)          # launches already done count as scanned
        finally:
            sc.drop(job)
        if self.abort.is_set():
            self._release_ahead()

    def _pull_ahead(self) -> None:
        """Pull the next batch and launch it now, so the device does not wait for the host
        between batches.  A clean job (``_stale``) or an abort discards it."""
        sched = self._scheduler
        if sched is None or self._terminate or not self.enabled or self.sizer is None:
            return
        self._stale.clear()
        batch = sched.pull(self.sizer.size(), timeout=0)
        if batch is None:
            return
        self._ahead = self.scanner.job(batch.work.midstate, batch.work.tail, batch.start,
                                       batch.count, batch.target, tag=batch)
        self.scanner.fill(self._ahead)

    def _release_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._give_back(ahead)

    def _give_back(self, job: ScanJob) -> None:
        self.scanner.drop(job)
        if self._scheduler is not None:
            self._scheduler.give_back(job.tag, 0)

    def _fail(self, exc: BaseException) -> None:
        """An OpenCL error: this device stops (one log line); the others mine on."""
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        failure = f"OpenCL error: {first}"
        log.error("%s: %s; the device is stopped and its work goes back to the queue",
                  self.name, failure)
        self._release_ahead()
        # never waited for (a lost device may not finish them): kept, not destroyed
        self.scanner._orphans.extend(self.scanner.inflight)
        self.scanner.inflight.clear()
        Device.set_enabled(self, False, failure)
        self.failure = failure          # from now on it reads as disabled for good


# --------------------------------------------------------------------------- selection
def select(selection: Iterable[str]) -> tuple[list[tuple[DeviceInfo, Any]], list[str]]:
    """The OpenCL devices a --devices selection names, and warnings to show.

    ``opencl``: every OpenCL device; ``opencl-gpu``: every OpenCL GPU (the default, with
    ``cpu``); ``openclP.D``: that device.  An OpenCL CPU device (PoCL) is used only when
    asked for by ``opencl`` or its name.
    """
    sel = list(selection)
    wanted_all = "opencl" in sel
    wanted_gpus = "opencl-gpu" in sel
    names = [s for s in sel if s.startswith("opencl") and s not in ("opencl", "opencl-gpu")]
    if not (wanted_all or wanted_gpus or names):
        return [], []
    found, reason = discover()
    warnings: list[str] = []
    if not found:
        if wanted_all or names:
            warnings.append(f"opencl: no device ({reason})")
        else:
            log.debug("opencl: no GPU (%s)", reason)
        return [], warnings
    known = {info.name for info, _ in found}
    for n in names:
        if n not in known:
            warnings.append(f"opencl: no device named {n} (found: {', '.join(sorted(known))})")
    chosen = [(info, dev) for info, dev in found
              if wanted_all or info.name in names or (wanted_gpus and info.used_by_default)]
    return chosen, warnings


def make_devices(selection: Iterable[str], **options: Any) -> list[OpenCLDevice]:
    """OpenCLDevice objects for a selection; a device whose kernel does not build is
    left out with one log line."""
    chosen, warnings = select(selection)
    names = [s for s in selection if s.startswith("opencl") and s not in ("opencl", "opencl-gpu")]
    missing = [n for n in names if n not in {info.name for info, _ in chosen}]
    if missing:   # asked for by name: a typo must not quietly mine without that device
        found = sorted(info.name for info, _ in discover()[0])
        raise DeviceSelectionError(f"--devices: no OpenCL device named {', '.join(missing)} "
                                   f"(found: {', '.join(found) or 'none'}; see sgm devices)")
    for w in warnings:
        log.warning("%s", w)
    devices = []
    errors: tuple[type[BaseException], ...] = (OpenCLBuildError, ValueError, *opencl_errors())
    for info, dev in chosen:
        try:
            devices.append(OpenCLDevice(info.name, dev, description=info.description, **options))
        except errors as exc:
            log.error("%s (%s): cannot use it: %s", info.name, info.description,
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return devices


def first_device(prefer_gpu: bool = True) -> tuple[DeviceInfo, Any]:
    """The OpenCL device `sgm scan`/`sgm bench` use first: a GPU when there is one."""
    found, reason = discover()
    if not found:
        raise OpenCLUnavailable(f"no OpenCL device: {reason}")
    if prefer_gpu:
        gpus = [f for f in found if f[0].device_type == "GPU"]
        if gpus:
            return gpus[0]
    return found[0]
