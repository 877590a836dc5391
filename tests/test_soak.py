"""The soak run (benchmarks/soak.py) for 60 seconds: the embedded pool's fault-injecting
mode, a new job every second, faults at random.  Nothing may leak or go missing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_minute_of_mining_through_random_faults(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--seconds", "60",
         "--fault-every", "4", "--seed", "16", "--json", str(out)],
        capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert out.exists(), f"soak.py wrote no results:\n{proc.stdout}\n{proc.stderr}"
    r = json.loads(out.read_text())
    report = json.dumps(r, indent=1)
    assert sum(r["faults_injected"].values()) >= 5, report
    assert r["rss_growth_after_warmup_mb"] < 30, report       # generous: a minute, shared box
    assert r["hw_errors"] == 0, report
    assert r["pool_invalid"] == {}, report                   # no invalid or duplicate share
    assert r["counts_balance"], report
    assert r["recovered"], report                            # every disconnect recovered
    assert r["longest_reconnect_s"] <= r["backoff_bound_s"] + 30, report
    assert r["accepted"] > 0 and r["pool_accepted"] >= r["accepted"], report
    assert proc.returncode == 0, f"{report}\n{proc.stderr[-2000:]}"
