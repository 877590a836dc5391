"""Quality gates, run as part of the suite so that `.ci/run` fails on a regression:

* ``ruff check`` over sgm/, gui/, tests/ and benchmarks/ (rules and exceptions in
  pyproject.toml, [tool.ruff]);
* ``mypy`` in strict mode over sgm/ ([tool.mypy]);
* ``mypy.stubtest``: the .pyi stubs of the compiled modules against the modules themselves
  (tests/stubtest_allowlist.txt says where and why they may differ).

ruff and mypy come with the [test] extra (scripts/setup.sh installs it); without them these
tests fail and say so rather than skip.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STUBBED_MODULES = ("sgm._native._sha256d", "sgm._native._queue", "sgm._native._worker")


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed: run scripts/setup.sh "
                    f"(or pip install -e '.[test]')", pytrace=False)
    # NO_COLOR: plain text in the failure message
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def explain(what: str, run: subprocess.CompletedProcess[str]) -> str:
    return f"{what} failed (exit {run.returncode}):\n{run.stdout[-8000:]}\n{run.stderr[-4000:]}"


def test_ruff_finds_nothing():
    run = run_tool("ruff", "check", "--no-cache", "sgm", "gui", "tests", "benchmarks")
    assert run.returncode == 0, explain("ruff check", run)


def test_mypy_strict_finds_nothing_in_sgm():
    # the paths and options come from [tool.mypy] in pyproject.toml
    run = run_tool("mypy")
    assert run.returncode == 0, explain("mypy", run)
    assert "Success" in run.stdout


def test_the_compiled_modules_match_their_stubs():
    # --ignore-disjoint-bases: TO BE REMOVED once the stubs mark the extension types with
    # PEP 800's typing_extensions.disjoint_base (sgm/_native is the engine branch's)
    run = run_tool("mypy.stubtest", *STUBBED_MODULES, "--ignore-disjoint-bases",
                   "--allowlist", str(ROOT / "tests" / "stubtest_allowlist.txt"))
    assert run.returncode == 0, explain("mypy.stubtest", run)
    stubs = sorted(p.name for p in (ROOT / "sgm" / "_native").glob("*.pyi"))
    # every compiled module with a stub is checked
    assert stubs == sorted(m.rsplit(".", 1)[1] + ".pyi" for m in STUBBED_MODULES)
