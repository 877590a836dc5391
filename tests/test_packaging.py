"""Packaging: the wheel carries everything sgm needs at run time and works outside the
source tree; setup.py refuses what it cannot build instead of producing a broken package."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# build outputs and local state that a clean checkout does not have
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                    "*.so", "*.c", ".pytest_cache", ".hypothesis", ".mypy_cache",
                                    ".tools")


def run_setup(cwd: Path, *prelude: str) -> subprocess.CompletedProcess:
    """`python setup.py --version` in cwd, after the Python statements in prelude."""
    code = "; ".join([*prelude, "import runpy, sys", "sys.argv = ['setup.py', '--version']",
                      "runpy.run_path('setup.py', run_name='__main__')"])
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_setup_refuses_windows_before_trying_to_compile():
    r = run_setup(ROOT, "import sys", "sys.platform = 'win32'")
    assert r.returncode != 0
    assert "Windows is not supported" in r.stderr and "Linux and macOS" in r.stderr


def test_a_missing_native_source_fails_the_build(tmp_path):
    shutil.copy(ROOT / "setup.py", tmp_path)
    shutil.copytree(ROOT / "sgm" / "_native", tmp_path / "sgm" / "_native", ignore=NOT_SOURCE)
    (tmp_path / "sgm" / "_native" / "_queue.pyx").unlink()
    r = run_setup(tmp_path)
    assert r.returncode != 0
    assert f"{os.path.join('sgm', '_native', '_queue.pyx')} is missing" in r.stderr


@pytest.mark.slow
def test_the_wheel_ships_what_sgm_needs_and_runs_outside_the_tree(tmp_path):
    """Builds a wheel from a clean copy of the tree (with one OpenCL source added to
    kernels/), unpacks it elsewhere and runs sgm from there; the desktop app's gui/ folder
    ships as the package sgm_gui with the `sgm-gui` script."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    (src / "kernels" / "probe.cl").write_text("__kernel void probe(void) {}\n")
    dist = tmp_path / "dist"
    # no build isolation: the build requirements are already installed (scripts/setup.sh),
    # so the test needs no package index
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--no-build-isolation", "-w", str(dist), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    [wheel] = dist.glob("sgm-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        site = tmp_path / "site"
        zf.extractall(site)

    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "sgm").rglob("*")
                if p.suffix in (".py", ".pyi", ".pyx", ".pxd", ".h") or p.name == "py.typed"}
    expected.add("sgm/kernels/probe.cl")
    # gui/ installs as sgm_gui (setup.py's package_dir): every module of the app, none left behind
    # (listed from the copy the wheel was built from: the app is being written as this runs)
    gui_modules = {"sgm_gui/" + p.relative_to(src / "gui").as_posix()
                   for p in (src / "gui").rglob("*.py")}
    assert "sgm_gui/__init__.py" in gui_modules
    expected |= gui_modules
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    for module in ("_sha256d", "_queue"):
        assert any(n.startswith(f"sgm/_native/{module}.") and n.endswith((".so", ".pyd"))
                   for n in names), f"no compiled {module} in the wheel"
    assert not [n for n in names if n.endswith(".c")], "generated C shipped as package data"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata
    assert not [n for n in names if n.startswith("gui/")], "gui/ shipped under its folder name"
    entry_points = next((site / n).read_text() for n in names
                        if n.endswith(".dist-info/entry_points.txt"))
    scripts = {line.split("=")[0].strip(): line.split("=")[1].strip()
               for line in entry_points.splitlines() if "=" in line}
    assert scripts.get("sgm") == "sgm.cli:main", entry_points
    assert scripts.get("sgm-gui") == "sgm_gui.app:main", entry_points
    assert "Provides-Extra: gui" in metadata and "Provides-Extra: installer" in metadata

    env = dict(os.environ, PYTHONPATH=str(site))
    code = ("import sgm, sgm._native, sgm._native._queue, sgm_gui; "
            "from importlib.resources import files; "
            "assert sgm.__file__.startswith(sys.argv[1]), sgm.__file__; "
            "assert sgm_gui.__file__.startswith(sys.argv[1]), sgm_gui.__file__; "
            "assert 'probe' in (files('sgm') / 'kernels' / 'probe.cl').read_text(); "
            "print(' '.join(sgm._native.available_implementations()))")
    r = subprocess.run([sys.executable, "-c", "import sys; " + code, str(site)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "scalar" in r.stdout.split()
    r = subprocess.run([sys.executable, "-m", "sgm", "devices"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "implementations:" in r.stdout, r.stderr
