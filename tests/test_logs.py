"""--log-file (rotating, timestamps and levels, terminal unchanged) and --sharelog (CSV of
every share's verdict), from real sgm runs against a real local pool; no password in
either."""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sgm.hashing import bits_to_difficulty
from sgm.ops import logs
from sgm.ops.sharelog import COLUMNS
from sgm.pool import start_in_thread

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cretPW-logs"
WAIT = 120.0
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S+: ")


def run_sgm(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sgm", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=WAIT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture()
def pool():
    p = start_in_thread(difficulty_bits=14, jobs=None, job_interval=1.5)
    yield p
    p.stop()


def test_log_file_and_sharelog_from_a_run(tmp_path, pool):
    log_path, share_path, summary = tmp_path / "sgm.log", tmp_path / "shares.csv", tmp_path / "s.json"
    # the share log comes from the config file, the log file from the flag
    cfg = tmp_path / "sgm.json"
    cfg.write_text(json.dumps({"sharelog": str(share_path)}))
    r = run_sgm(tmp_path, "-o", pool.url, "-u", "rig1", "-p", SECRET, "-t", "2",
                "--devices", "cpu", "--time-limit", "4", "-c", str(cfg),
                "--log-file", str(log_path), "--summary-json", str(summary))
    assert r.returncode == 0, r.stderr
    s = json.loads(summary.read_text())
    assert s["accepted"] >= 1
    text = log_path.read_text()
    lines = text.splitlines()
    assert lines and all(LINE.match(line) for line in lines if not line.startswith(" ")), \
        [line for line in lines if not LINE.match(line)][:3]
    assert "stratum: connected to" in text                      # engine records
    assert re.search(r"INFO +sgm\.events: share cpu\d job \S+ nonce [0-9a-f]{8} .*: accepted",
                     text)                                       # telemetry events
    assert re.search(r"INFO +sgm\.events: job \S+", text)
    # the terminal is as without --log-file: no INFO records on stderr, no log lines on stdout
    assert " INFO " not in r.stderr
    assert not any(LINE.match(line) for line in r.stdout.splitlines())
    assert "=== sgm final statistics ===" in r.stdout

    with share_path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS
    body = [dict(zip(COLUMNS, row, strict=False)) for row in rows[1:]]
    assert sum(row["result"] == "accepted" for row in body) == s["accepted"]
    # a share found for a job already gone is counted (stale_dropped), not listed: in a
    # flood there are thousands a second; the pool's stale refusals are listed
    assert s["rejected_stale"] <= sum(row["result"] == "stale" for row in body) <= s["stale"]
    assert sum(row["result"] == "rejected" for row in body) == s["rejected"]
    for row in body:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", row["time"])
        assert re.fullmatch(r"cpu\d", row["device"]) and re.fullmatch(r"[0-9a-f]{8}", row["nonce"])
        assert row["pool"] == pool.url and row["job"]
        assert float(row["difficulty"]) >= bits_to_difficulty(14) * 0.9999   # 14-bit shares
        assert (row["reason"] == "") == (row["result"] == "accepted")
    # a second run appends (one header)
    r2 = run_sgm(tmp_path, "-o", pool.url, "-u", "rig1", "-p", SECRET, "-t", "1",
                 "--devices", "cpu", "--time-limit", "2", "--sharelog", str(share_path))
    assert r2.returncode == 0, r2.stderr
    rows2 = list(csv.reader(share_path.open(newline="")))
    assert rows2[: len(rows)] == rows and sum(tuple(row) == COLUMNS for row in rows2) == 1
    for blob in (text, share_path.read_text(), r.stdout, r.stderr, r2.stdout, r2.stderr):
        assert SECRET not in blob


def test_a_password_in_a_log_record_is_masked_and_the_file_rotates(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 4000)
    logger = logging.getLogger("sgm.test_logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    path = tmp_path / "r.log"
    handler = logs.open_log_file(str(path), [SECRET, "x"], logger=logger)
    try:
        logger.info("connecting with password %s to a pool", SECRET)
        try:
            raise RuntimeError(f"auth failed for {SECRET}")
        except RuntimeError:
            logger.exception("oops")
        logger.info("exactly x")
        for i in range(200):
            logger.info("line %d of filler text to make the log rotate", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert "r.log.1" in rotated and len(rotated) <= 1 + logs.BACKUPS
    everything = "".join(p.read_text() for p in tmp_path.iterdir())
    assert SECRET not in everything
    assert "connecting with password *** to a pool" in everything
    assert "auth failed for ***" in everything
    assert "exactly x" in everything          # too short to be masked without garbling
    assert "line 199 of filler" in path.read_text()


def test_log_file_in_a_missing_directory_is_a_clear_error(tmp_path):
    r = run_sgm(tmp_path, "-t", "1", "--log-file", str(tmp_path / "no" / "such.log"),
                "--time-limit", "1")
    assert r.returncode == 1 and "--log-file" in r.stderr and "Traceback" not in r.stderr
    r = run_sgm(tmp_path, "-t", "1", "--sharelog", str(tmp_path / "no" / "such.csv"),
                "--time-limit", "1")
    assert r.returncode == 1 and "--sharelog" in r.stderr and "Traceback" not in r.stderr
