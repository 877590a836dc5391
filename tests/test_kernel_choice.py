"""The default CPU kernel is calibrated once per CPU model and build and kept in the user
cache directory: every later launch uses the same one, until the build or the CPU changes or
the user asks (``sgm bench --save-default``); SGM_IMPL pins one, and ``sgm devices`` says
which kernel and why."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sgm import _native

ROOT = Path(__file__).resolve().parents[1]


def sgm(cache: Path, *args: str, impl: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SGM_IMPL"}
    env.update(SGM_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    if impl:
        env["SGM_IMPL"] = impl
    return subprocess.run([sys.executable, "-m", "sgm", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)


def devices(cache: Path, impl: str | None = None) -> dict:
    r = sgm(cache, "devices", "--json", impl=impl)
    assert r.returncode == 0, r.stderr
    [cpu] = [d for d in json.loads(r.stdout)["devices"] if d["kind"] == "cpu"]
    return cpu


def test_the_first_launch_calibrates_and_every_later_one_keeps_the_pick(tmp_path):
    first = devices(tmp_path)
    kept = json.loads((tmp_path / "kernel-choice.json").read_text())
    assert kept["impl"] == first["default_impl"] in _native.available_implementations()
    assert set(kept["rates"]) >= {first["default_impl"]}
    assert kept["impl"] == max(kept["rates"], key=kept["rates"].get)
    assert "fastest when calibrated" in first["default_impl_reason"]
    stamp = (tmp_path / "kernel-choice.json").stat().st_mtime_ns
    # a kept choice is believed even when it is not what a new measurement would say
    other = next((n for n in kept["rates"] if n != kept["impl"]), kept["impl"])
    kept["impl"] = other
    (tmp_path / "kernel-choice.json").write_text(json.dumps(kept))
    stamp = (tmp_path / "kernel-choice.json").stat().st_mtime_ns
    for _ in range(2):
        assert devices(tmp_path)["default_impl"] == other
    assert (tmp_path / "kernel-choice.json").stat().st_mtime_ns == stamp   # not measured again


def test_a_new_build_or_cpu_calibrates_again(tmp_path):
    devices(tmp_path)
    path = tmp_path / "kernel-choice.json"
    kept = json.loads(path.read_text())
    kept["key"]["build"] = "an-older-build"
    kept["measured_at"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(kept))
    devices(tmp_path)
    again = json.loads(path.read_text())
    assert again["measured_at"] != "2000-01-01T00:00:00Z"
    assert again["key"]["build"] != "an-older-build"


def test_save_default_recalibrates_on_request(tmp_path):
    devices(tmp_path)
    path = tmp_path / "kernel-choice.json"
    kept = json.loads(path.read_text())
    kept["measured_at"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(kept))
    r = sgm(tmp_path, "bench", "--save-default", "--impl", "scalar", "--threads", "1",
            "--seconds", "0.05", "--repeats", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert "default CPU kernel" in r.stderr
    assert json.loads(path.read_text())["measured_at"] != "2000-01-01T00:00:00Z"


def test_sgm_impl_pins_the_kernel_and_a_damaged_file_is_measured_again(tmp_path):
    avail = _native.available_implementations()
    pinned = devices(tmp_path, impl=avail[-1])
    assert pinned["default_impl"] == avail[-1]
    assert "SGM_IMPL" in pinned["default_impl_reason"]
    (tmp_path / "kernel-choice.json").write_text("{not json")
    fixed = devices(tmp_path)
    assert fixed["default_impl"] in avail
    assert json.loads((tmp_path / "kernel-choice.json").read_text())["impl"] == \
        fixed["default_impl"]


def test_a_kernel_a_person_chose_is_kept_and_said_to_be_theirs(tmp_path, monkeypatch):
    """sgm.api.save_kernel_choice (the desktop app's "Use this kernel"): the slowest
    kernel chosen on purpose is what the next process mines with, and `sgm devices` says
    who chose it; a kernel this CPU lacks is refused; an unwritable cache is an error, not
    a choice that silently holds for one process."""
    from sgm._native import _sha256d
    from sgm.api import save_kernel_choice

    monkeypatch.setenv("SGM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SGM_IMPL", raising=False)
    try:
        choice = save_kernel_choice("scalar", {"scalar": 1e6})
        assert choice.impl == "scalar" and not choice.pinned
        cpu = devices(tmp_path)
        assert cpu["default_impl"] == "scalar"
        assert cpu["default_impl_reason"].startswith("scalar: chosen by the user on ")
        assert "scalar 1.0 MH/s" in cpu["default_impl_reason"]
        with pytest.raises(ValueError, match="not available"):
            save_kernel_choice("abacus")
        blocked = tmp_path / "file"
        blocked.write_text("")
        monkeypatch.setenv("SGM_CACHE_DIR", str(blocked / "sub"))
        with pytest.raises(OSError):
            save_kernel_choice("scalar")
    finally:
        _sha256d._reset_default()       # this process picks its default afresh
