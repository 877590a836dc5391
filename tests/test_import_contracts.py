"""The desktop app's boundary, as import-linter contracts ([tool.importlinter] in
pyproject.toml): sgm_gui imports the engine only through sgm.api, the engine never imports
Qt or the app.

* the contracts are kept (``lint-imports`` exits 0);
* they are not vacuous: a contract forbidding sgm.api to the app is reported broken, so
  the linter really sees the app's imports;
* the forbidden list names every engine module but sgm.api (a module added later must be
  added there, or the app could import it unnoticed).
"""
from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

try:   # never a silent skip: the contracts need the linter
    import importlinter  # noqa: F401
except ImportError as exc:
    raise ImportError("tests/test_import_contracts.py needs import-linter: run scripts/setup.sh "
                      f"or pip install -e '.[test]' ({exc})") from exc

import sgm

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def lint(config: Path) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True))")
    return subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True,
                          text=True, cwd=ROOT, timeout=240)


def contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_are_kept():
    r = lint(PYPROJECT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout, r.stdout


def test_a_contract_the_app_breaks_is_reported_broken(tmp_path):
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["sgm", "sgm_gui"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "no api"\ntype = "forbidden"\n'
                      'source_modules = ["sgm_gui"]\nforbidden_modules = ["sgm.api"]\n',
                      encoding="utf-8")
    r = lint(config)
    assert r.returncode != 0, r.stdout
    assert "BROKEN" in r.stdout and "sgm_gui" in r.stdout and "sgm.api" in r.stdout, r.stdout


def test_every_engine_module_but_the_api_is_forbidden_to_the_app():
    (app_rule,) = [c for c in contracts() if c["source_modules"] == ["sgm_gui"]]
    engine = {f"sgm.{m.name}" for m in pkgutil.iter_modules(sgm.__path__)}
    assert "sgm.miner" in engine and "sgm.api" in engine
    assert set(app_rule["forbidden_modules"]) == engine - {"sgm.api"}


def test_the_apps_own_imports_are_relative():
    """One style inside the app: its modules import each other relatively."""
    absolute = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in (ROOT / "gui").rglob("*.py")
                for line in p.read_text(encoding="utf-8").splitlines()
                if line.lstrip().startswith(("from sgm_gui", "import sgm_gui"))]
    assert absolute == []
