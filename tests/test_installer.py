"""The installer: `bash scripts/build-installer.sh` builds the self-contained bundle, and the
bundle -- unpacked outside the source tree, run with an environment that names no virtual
environment and no PYTHONPATH -- mines real shares on its embedded pool from both
executables, `sgm-gui` (offscreen) and `sgm`.

One build for the module (about a minute); a build that cannot work fails these tests with
the script's own message, it never skips them.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
NAME = f"sgm-{VERSION}-linux-{os.uname().machine}"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass
class Bundle:
    archive: Path
    members: list[str]
    root: Path          # the unpacked sgm-VERSION-linux-ARCH/ folder
    home: Path          # HOME of the runs (fresh settings, PoCL cache)
    build_log: str

    def env(self, **extra: str) -> dict[str, str]:
        """A bare environment: no venv, no PYTHONPATH, a HOME of its own."""
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8",
               "XDG_CONFIG_HOME": str(self.home / ".config"),
               "XDG_CACHE_HOME": str(self.home / ".cache")}
        env.update(extra)
        return env

    def run(self, exe: str, *args: str, timeout: float = 180,
            **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.root / exe), *args], cwd=self.home, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundle]:
    tmp = tmp_path_factory.mktemp("installer")
    dist, work = tmp / "dist", tmp / "work"
    # the documented command, with its output and scratch folders moved out of the tree
    r = subprocess.run(["bash", "scripts/build-installer.sh", "--dist", str(dist),
                        "--work", str(work)], cwd=ROOT, capture_output=True, text=True,
                       timeout=840)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"build-installer.sh failed (exit {r.returncode}):\n{log[-6000:]}"
    archive = dist / f"{NAME}.tar.gz"
    assert archive.is_file(), f"no {archive.name} in {dist}: {sorted(os.listdir(dist))}"
    assert r.stdout.strip().splitlines()[-1] == str(archive), r.stdout
    unpacked = tmp / "unpacked"
    with tarfile.open(archive) as tf:
        members = tf.getnames()
        tf.extractall(unpacked, filter="tar")   # keep the executables' mode bits
    # nothing below may come from the build: the scratch folder goes before anything runs
    shutil.rmtree(work)
    home = tmp / "home"
    home.mkdir()
    yield Bundle(archive, members, unpacked / NAME, home, log)
    # half a gigabyte per build: not left for pytest's kept temporary folders
    shutil.rmtree(unpacked, ignore_errors=True)
    shutil.rmtree(dist, ignore_errors=True)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_archive_holds_both_executables_a_desktop_entry_and_an_icon(bundle: Bundle):
    names = set(bundle.members)
    for member in ("sgm", "sgm-gui", "sgm-gui.desktop", "sgm-gui.png",
                   "install-desktop-entry.sh", "LICENSE", "_internal/sgm/kernels/sha256d.cl",
                   "_internal/pyopencl/.libs/pocl.icd"):
        assert f"{NAME}/{member}" in names, f"{member} missing from {bundle.archive.name}"
    assert all(n == NAME or n.startswith(NAME + "/") for n in names), "files outside the top folder"
    # one shared _internal/: a second copy of Qt or Python would mean two bundles side by side
    libpython = f"libpython{sys.version_info.major}.{sys.version_info.minor}.so.1.0"
    assert sum(1 for n in names if n.endswith("/" + libpython)) == 1, libpython
    for exe in ("sgm", "sgm-gui"):
        assert os.access(bundle.root / exe, os.X_OK), f"{exe} is not executable"

    entry = (bundle.root / "sgm-gui.desktop").read_text()
    fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
    assert entry.startswith("[Desktop Entry]")
    assert fields["Type"] == "Application" and fields["Exec"] == "sgm-gui"
    assert fields["Icon"] == "sgm-gui" and fields["Terminal"] == "false"
    assert png_size(bundle.root / "sgm-gui.png") == (256, 256)


def test_the_desktop_entry_installer_points_at_the_unpacked_bundle(bundle: Bundle):
    data = bundle.home / "xdg-data"
    r = subprocess.run(["bash", str(bundle.root / "install-desktop-entry.sh")], cwd=bundle.home,
                       env=bundle.env(XDG_DATA_HOME=str(data)), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    entry = (data / "applications" / "sgm-gui.desktop").read_text()
    assert f'Exec="{bundle.root / "sgm-gui"}"' in entry
    icon = data / "icons" / "hicolor" / "256x256" / "apps" / "sgm-gui.png"
    assert f"Icon={icon}" in entry and png_size(icon) == (256, 256)


def test_bundled_sgm_gui_mines_accepted_shares_offscreen_and_exits_0(bundle: Bundle):
    summary, shot = bundle.home / "gui-summary.json", bundle.home / "gui.png"
    # 16-bit shares: dozens a second, so even nice-19 workers starved by a busy machine
    # find some in 20 s
    r = bundle.run("sgm-gui", "--quit-after", "20", "--difficulty", "16", "--summary-json",
                   str(summary), "--screenshot", str(shot), QT_QPA_PLATFORM="offscreen")
    assert r.returncode == 0, f"sgm-gui exited {r.returncode}:\n{r.stderr[-4000:]}"
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
    s = json.loads(summary.read_text())
    assert s["accepted"] > 0 and s["hashes"] > 0, s
    assert s["rejected"] == 0 and s["hw_errors"] == 0, s
    assert {d["kind"] for d in s["devices"]} == {"cpu"}, s["devices"]
    width, height = png_size(shot)
    assert width > 400 and height > 300, (width, height)


def test_bundled_sgm_mines_accepted_shares_on_the_embedded_pool(bundle: Bundle):
    summary = bundle.home / "cli-summary.json"
    r = bundle.run("sgm", "--jobs", "1", "--duration", "5", "--difficulty", "12", "-q",
                   "--summary-json", str(summary))
    assert r.returncode == 0, f"sgm exited {r.returncode}:\n{r.stderr[-4000:]}"
    s = json.loads(summary.read_text())
    assert s["accepted"] > 0 and s["hashes"] > 0, s
    assert s["rejected"] == 0 and s["hw_errors"] == 0, s


def test_bundled_sgm_finds_pocl_and_its_kernel_agrees_with_the_native_one(bundle: Bundle):
    """The bundled ICD loader finds the bundled PoCL, and sgm/kernels/sha256d.cl from the
    bundle compiles and finds the same nonces as the native kernel (PoCL links the kernel
    with the system linker, /usr/bin/ld, which scripts/setup.sh installs)."""
    r = bundle.run("sgm", "devices", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    opencl = [d for d in info["devices"] if d["kind"] == "opencl"]
    assert opencl, f"no OpenCL device from the bundle: {info.get('opencl_unavailable_reason')}"
    assert any("Portable Computing Language" in d["platform"] for d in opencl), opencl

    header = bytes(range(80)).hex()
    scan = ["scan", header, "--start", "0", "--count", "2000000", "--difficulty", "0.0001"]
    cpu = bundle.run("sgm", *scan, timeout=120)
    gpu = bundle.run("sgm", *scan, "--device", "opencl", timeout=300)
    assert cpu.returncode == 0 and gpu.returncode == 0, cpu.stderr + gpu.stderr
    nonces = cpu.stdout.split()
    assert nonces, "no nonce below a difficulty-0.0001 target in 2M nonces"
    assert gpu.stdout.split() == nonces
