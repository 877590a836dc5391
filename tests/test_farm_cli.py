"""`sgm farm`: three mining sgm instances, one unreachable address and one that answers
garbage, watched through their cgminer APIs; each row right, the bad ones marked with
the reason, none holding up the others."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sgm.miner import Miner, MinerConfig
from sgm.ops.cgminer_api import CgminerApi
from sgm.ops.farm import parse_rig

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120.0


class Garbage:
    """A TCP server that answers every request with bytes that are not a cgminer reply."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello\x00")

    def close(self) -> None:
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]   # closed again: nothing listens there


@pytest.fixture(scope="module")
def rigs():
    made = []
    for bits in (13, 14, 15):
        miner = Miner(MinerConfig(threads=1, device_kinds=("cpu",), local_jobs=None,
                                  local_difficulty_bits=bits, local_job_interval=120.0))
        api = CgminerApi(miner, port=0).start()
        miner.start()
        made.append((miner, api))
    deadline = time.monotonic() + WAIT
    while not all(m.summary()["accepted"] >= 1 for m, _ in made):
        assert time.monotonic() < deadline, "a rig found no share"
        time.sleep(0.1)
    yield made
    for miner, api in made:
        miner.stop()
        api.stop()


def test_farm_once_json_over_three_rigs_and_two_bad_ones(rigs, tmp_path):
    garbage = Garbage()
    dead = free_port()
    addresses = [f"127.0.0.1:{api.port}" for _, api in rigs]
    # two rigs on the command line, one from the config file (with a bad and a dead one)
    cfg = tmp_path / "sgm.json"
    cfg.write_text(json.dumps({"rigs": [addresses[2], f"127.0.0.1:{dead}"]}))
    try:
        r = subprocess.run([sys.executable, "-m", "sgm", "farm", addresses[0], addresses[1],
                            f"127.0.0.1:{garbage.port}", "-c", str(cfg), "--once", "--json",
                            "--timeout", "10"],
                           capture_output=True, text=True, timeout=WAIT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        garbage.close()
    assert r.returncode == 0, r.stderr
    poll = json.loads(r.stdout)
    rows = {row["rig"]: row for row in poll["rigs"]}
    assert list(rows) == [addresses[0], addresses[1], f"127.0.0.1:{garbage.port}",
                          addresses[2], f"127.0.0.1:{dead}"]
    for (miner, _api), address in zip(rigs, addresses, strict=False):
        row = rows[address]
        s = miner.summary()
        assert row["state"] == "ok" and row["error"] == ""
        assert row["version"].startswith("sgm ")
        assert 1 <= row["accepted"] <= s["accepted"]   # read a moment before this summary
        assert row["hw_errors"] == s["hw_errors"] == 0
        assert row["mhs_av"] > 0 and row["last_seen"] is not None
        assert row["pools"][0]["url"] == miner.local_pool.url and row["pools"][0]["active"]
    assert rows[f"127.0.0.1:{garbage.port}"]["state"] == "malformed"
    assert "not JSON" in rows[f"127.0.0.1:{garbage.port}"]["error"]
    assert rows[f"127.0.0.1:{dead}"]["state"] == "unreachable"
    assert "refused" in rows[f"127.0.0.1:{dead}"]["error"].lower()
    total = poll["total"]
    assert total["rigs"] == 5 and total["rigs_ok"] == 3
    assert total["accepted"] == sum(rows[a]["accepted"] for a in addresses)
    assert total["mhs_av"] == pytest.approx(sum(rows[a]["mhs_av"] for a in addresses))


def test_farm_table_marks_the_unreachable_rig(rigs):
    dead = free_port()
    r = subprocess.run([sys.executable, "-m", "sgm", "farm", f"127.0.0.1:{rigs[0][1].port}",
                        f"127.0.0.1:{dead}", "--interval", "0.5", "--time-limit", "1.2"],
                       capture_output=True, text=True, timeout=WAIT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    tables = [t for t in r.stdout.split("\n\n") if t.strip()]
    assert len(tables) >= 2        # polled again: --interval
    last = tables[-1]
    assert f"127.0.0.1:{dead}" in last and "unreachable" in last and "never" in last
    assert "total" in last and "1/2 ok" in last


def test_rig_addresses_and_usage_errors(tmp_path):
    assert str(parse_rig("10.0.0.5")) == "10.0.0.5:4028"
    assert str(parse_rig("rig7:4029")) == "rig7:4029"
    for bad in ("", ":4028", "h:0", "h:port"):
        with pytest.raises(ValueError):
            parse_rig(bad)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in ([], ["h:99999"]):
        r = subprocess.run([sys.executable, "-m", "sgm", "farm", *argv], capture_output=True,
                           text=True, timeout=WAIT, env=env, cwd=tmp_path)
        assert r.returncode == 2 and "error" in r.stderr and "Traceback" not in r.stderr
