"""Prometheus /metrics of a real mining Miner, parsed with prometheus_client's own text
parser; at stop the counters equal the summary.  Also the version string sgm reports."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import sgm
from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.ops.metrics import MetricsServer, parse_listen
from sgm.pool import start_in_thread

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cretPW-metrics"
WAIT = 60.0


def scrape(port: int) -> dict[str, list]:
    """{family name: [(sample name, labels, value), ...]} from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT) as r:
        assert r.status == 200
        text = r.read().decode()
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = [(s.name, s.labels, s.value) for s in fam.samples]
    return out


def total(fams: dict, sample: str, **labels: str) -> float:
    return sum(v for name, lab, v in fams[sample.removesuffix("_total")]
               if name == sample and all(lab.get(k) == w for k, w in labels.items()))


def test_metrics_follow_the_miner_and_equal_the_summary_at_stop():
    pool = start_in_thread(difficulty_bits=14, jobs=None, job_interval=120.0)
    miner = Miner(MinerConfig(threads=2, device_kinds=("cpu",),
                              pools=[PoolConfig(pool.url, "w", SECRET)]))
    server = MetricsServer(miner, "127.0.0.1", 0).start()
    try:
        miner.start()
        deadline = time.monotonic() + WAIT
        # hashes are read from the native workers' counters every 0.25 s
        while miner.summary()["accepted"] < 5 or \
                not all(d["hashes"] > 0 for d in miner.summary()["devices"]):
            assert time.monotonic() < deadline, "no shares accepted"
            time.sleep(0.05)
        live = scrape(server.port)
        assert total(live, "sgm_hashes_total") > 0
        assert live["sgm_pool_active"][0][2] == 1
        states = {lab["state"]: v for _, lab, v in live["sgm_pool_state"]}
        assert states["connected"] == 1 and sum(states.values()) == 1
        assert {lab["window"] for _, lab, _ in live["sgm_hashrate_hashes_per_second"]} == \
            {"5s", "1m", "5m", "15m"}
        assert all(v > 0 for *_, v in live["sgm_batch_latency_seconds"])
        assert live["sgm_network_difficulty"][0][2] > 0
        assert live["sgm_expected_block_seconds"][0][2] > 0
        miner.stop()
        fams = scrape(server.port)
        s = miner.summary()
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics",
                                      timeout=WAIT).read().decode()
    finally:
        miner.stop()
        server.stop()
        pool.stop()
    # the counters at stop are the summary's figures exactly
    assert total(fams, "sgm_hashes_total") == s["hashes"]
    assert total(fams, "sgm_shares_total", result="accepted") == s["accepted"] >= 5
    assert total(fams, "sgm_shares_total", result="rejected") == s["rejected"]
    assert total(fams, "sgm_shares_total", result="stale") == s["stale"]
    assert total(fams, "sgm_hardware_errors_total") == s["hw_errors"]
    for d in s["devices"]:
        assert total(fams, "sgm_hashes_total", device=d["name"]) == d["hashes"]
        assert total(fams, "sgm_shares_total", device=d["name"], result="accepted") == d["accepted"]
    assert fams["sgm_best_share_difficulty"][0][2] == pytest.approx(s["best_share_diff"])
    assert fams["sgm_uptime_seconds"][0][2] == pytest.approx(s["elapsed_s"])
    assert fams["sgm_build_info"][0][1] == {"version": sgm.__version__}
    # conventions: counters end in _total, no password anywhere
    for fam in text_string_to_metric_families(text):
        if fam.type == "counter":
            assert all(smp.name.endswith(("_total", "_created")) for smp in fam.samples)
    assert SECRET not in text


def test_listen_addresses():
    assert parse_listen("9100") == ("127.0.0.1", 9100)
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    for bad in ("host:port", "127.0.0.1:70000", ""):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_version_everywhere_is_the_same():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["version"] == sgm.__version__
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (["--version"], ["-t", "1", "--version"]):
        r = subprocess.run([sys.executable, "-m", "sgm", *argv], capture_output=True,
                           text=True, timeout=WAIT, env=env)
        assert r.returncode == 0, r.stderr
        assert re.match(rf"sgm {re.escape(sgm.__version__)} \(Python ", r.stdout), r.stdout


def test_metrics_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "sgm", "-t", "1", "--devices", "cpu",
                            "--metrics-listen", f"127.0.0.1:{port}", "--time-limit", "5"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=WAIT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1 and "--metrics-listen" in r.stderr and "Traceback" not in r.stderr


def test_expected_time_to_a_block():
    from sgm.ops.odds import expected_block_seconds, format_duration

    assert expected_block_seconds(1.0, 2.0 ** 32) == 1.0
    assert expected_block_seconds(1e12, 1e9) == pytest.approx(1e12 * 2 ** 32 / 1e9)
    for unknown in ((None, 1e6), (1.0, 0.0), (0.0, 1e6), (float("nan"), 1e6)):
        assert expected_block_seconds(*unknown) is None
    assert format_duration(42) == "42 s"
    assert format_duration(3 * 3600) == "3 h"
    assert format_duration(2 * 365.25 * 86400) == "2 years"
    assert format_duration(None) == "?"


def test_status_line_and_summary_tell_the_expected_time_to_a_block(tmp_path):
    from sgm.hashing import nbits_to_target, target_to_difficulty
    from sgm.pool.template import DEFAULT_NBITS

    summary = tmp_path / "s.json"
    r = subprocess.run([sys.executable, "-m", "sgm", "-t", "1", "--devices", "cpu",
                        "--difficulty", "16", "--time-limit", "6", "--summary-json", str(summary)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=WAIT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    s = json.loads(summary.read_text())
    netdiff = target_to_difficulty(nbits_to_target(DEFAULT_NBITS))   # the embedded pool's nbits
    assert s["network_difficulty"] == pytest.approx(netdiff)
    assert s["expected_block_s"] == pytest.approx(netdiff * 2 ** 32 / s["hashrate"])
    status = [line for line in r.stdout.splitlines() if "status:" in line]
    assert status and all(re.search(r"\| block ~[\d.e+]+ (years|days|h|min|s)$", line)
                          for line in status), status
