"""The kernel source and its compiled programs.

* :func:`kernel_path` -- ``sha256d.cl`` in an installed wheel (``sgm/kernels/``) or in a
  source checkout (``kernels/``, the source of truth).
* :func:`choose_geometry` -- vector width, work-group size and built-ins for a device.
* :class:`ProgramCache` -- compiled programs on disk (the user cache directory), keyed by
  platform, device, driver version, kernel source hash and build options.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from sgm.devices.opencl import runtime
from sgm.devices.opencl.runtime import OpenCLBuildError, device_type_name

log = logging.getLogger(__name__)

KERNEL_FILE = "sha256d.cl"
KERNEL_NAME = "sgm_sha256d_scan"


def kernel_path(package: Path | None = None) -> Path:
    """sha256d.cl: sgm/kernels/ in an installed wheel, kernels/ in a source checkout
    (``package``: the sgm package directory, this one by default)."""
    package = package or Path(__file__).resolve().parents[2]
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
            "driver": dev.driver_version, "pyopencl": runtime.cl.VERSION_TEXT,
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
                prg = runtime.cl.Program(ctx, [dev], [binary]).build(options=options, devices=[dev])
                runtime.cl.Kernel(prg, KERNEL_NAME)          # the kernel is really there
                return prg, "cache"
            except Exception as exc:  # noqa: BLE001 - any failure: rebuild from source
                log.warning("OpenCL program cache entry %s is unusable (%s); rebuilding it",
                            path.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                origin = "rebuilt"
                try:
                    path.unlink()
                except OSError:
                    pass
        nvidia = is_nvidia(dev)
        # NVIDIA's compiler reports registers and spills in the build log when asked
        build_options = f"{options} -cl-nv-verbose" if nvidia else options
        try:
            # cache_dir=False: no pyopencl cache besides this one (pyopencl's hint says str)
            prg = runtime.cl.Program(ctx, source).build(options=build_options, devices=[dev],
                                                        cache_dir=False)  # type: ignore[arg-type]
        except runtime.cl.Error as exc:
            raise OpenCLBuildError(_first_lines(str(exc))) from exc
        if nvidia:
            _warn_spills(prg, dev, options)
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
            binaries = prg.get_info(runtime.cl.program_info.BINARIES)
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
        except (OSError, runtime.cl.Error) as exc:
            log.info("OpenCL program not cached (%s): the next start compiles again", exc)


def _first_lines(text: str, n: int = 6) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[:n]) + (" ..." if len(lines) > n else "")


def is_nvidia(dev: Any) -> bool:
    """Whether ``dev`` runs NVIDIA's OpenCL (whose build log reports spills)."""
    try:
        return "nvidia" in f"{dev.platform.name} {dev.vendor}".lower()
    except AttributeError:
        return False


def spills(build_log: str) -> int:
    """Bytes of spill stores and loads NVIDIA's compiler reports in a verbose build log."""
    return sum(int(m.group(1)) for m in re.finditer(r"(\d+) bytes spill (?:stores|loads)",
                                                    build_log))


def _warn_spills(prg: Any, dev: Any, options: str) -> None:
    try:
        text = str(prg.get_build_info(dev, runtime.cl.program_build_info.LOG) or "")
    except runtime.cl.Error:
        return
    n = spills(text)
    if n:
        log.warning("%s: the kernel spills registers (%d bytes of spill stores/loads with %s): "
                    "it runs slower than it should; see benchmarks/gpu_static.py",
                    str(dev.name).strip(), n, options)
