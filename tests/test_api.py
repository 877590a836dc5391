"""The cgminer-compatible API over real TCP connections, against a real mining Miner.

Every read command in both request forms, the fields checked against the engine's own
telemetry, pyasic's cgminer RPC client reading summary/devs/pools, access rules
(127.0.0.1 privileged, 127.0.0.2 read-only, 127.0.0.3 not allowed), device and pool
control, quit, malformed requests, 100 clients at once, and no password in any reply.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.ops.cgminer_api import (
    MSG_ACCDENY,
    MSG_INVCMD,
    MSG_INVJSON,
    READ_COMMANDS,
    CgminerApi,
    access,
    bind_host,
    parse_allow,
)
from sgm.pool import start_in_thread
from sgm.telemetry import ShareEvent

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cretPW-api"
SECRET2 = "an0therPW-api"
WAIT = 60.0   # a failure bound only: a busy machine may be slow, a working one is not


def ask(port: int, payload: bytes | str, src: str = "127.0.0.1", shutdown: bool = False,
        timeout: float = WAIT) -> bytes:
    """Send one request from address ``src``; everything the server sends until it closes."""
    if isinstance(payload, str):
        payload = payload.encode()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(payload)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def ask_json(port: int, command: str, parameter: str = "", src: str = "127.0.0.1") -> dict:
    raw = ask(port, json.dumps({"command": command, "parameter": parameter}), src)
    assert raw.endswith(b"\x00"), raw[-40:]
    return json.loads(raw[:-1])


def ask_plain(port: int, request: str, src: str = "127.0.0.1") -> str:
    raw = ask(port, request, src)
    assert raw.endswith(b"\x00")
    return raw[:-1].decode()


def parse_plain(text: str) -> list[dict[str, str]]:
    """cgminer's plain reply: sections split by |, fields by , (backslash escapes)."""
    sections, fields, cur, esc = [], {}, "", False
    key = None
    for ch in text:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == "=" and key is None:
            key, cur = cur, ""
        elif ch in ",|":
            if key is None:
                fields["_section"] = cur
            else:
                fields[key] = cur
            key, cur = None, ""
            if ch == "|":
                sections.append(fields)
                fields = {}
        else:
            cur += ch
    return sections


def wait_for(cond: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class Rig:
    """A mining Miner (embedded pool, easy shares) with its API and a record of shares."""

    def __init__(self, allow: str = "W:127.0.0.1,127.0.0.2", threads: int = 1,
                 request_timeout: float = 1.0, **cfg: Any) -> None:
        cfg.setdefault("local_jobs", None)
        cfg.setdefault("local_difficulty_bits", 14)
        cfg.setdefault("local_job_interval", 120.0)
        cfg.setdefault("device_kinds", ("cpu",))
        self.miner = Miner(MinerConfig(threads=threads, **cfg))
        self.shares: list[ShareEvent] = []
        self._sub = self.miner.subscribe(self._record, maxsize=100_000)
        self.quits = 0
        self.api = CgminerApi(self.miner, port=0, allow=allow, request_timeout=request_timeout,
                              on_quit=self._on_quit)
        self.api.start()
        self.miner.start()
        self.port = self.api.port

    def _record(self, ev: Any) -> None:
        if isinstance(ev, ShareEvent):
            self.shares.append(ev)

    def _on_quit(self) -> None:
        self.quits += 1

    def close(self) -> None:
        self.miner.stop()
        self._sub.close()
        self.api.stop()


@pytest.fixture(scope="module")
def rig():
    r = Rig()
    wait_for(lambda: r.miner.summary()["accepted"] >= 3, "three accepted shares")
    yield r
    r.close()


# --------------------------------------------------------------------------- access rules
def test_allow_syntax_and_bind_address():
    rules = parse_allow("W:127.0.0.1,192.168.0/24, R:10.1/16")
    assert [(str(r.network), r.privileged) for r in rules] == [
        ("127.0.0.1/32", True), ("192.168.0.0/24", False), ("10.1.0.0/16", False)]
    assert bind_host(rules) == "0.0.0.0"
    assert bind_host(parse_allow("W:127.0.0.1,127.0.0.2")) == "127.0.0.1"
    assert bind_host(parse_allow(None)) == "127.0.0.1"
    assert access(rules, "127.0.0.1") == "W"
    assert access(rules, "192.168.0.77") == "R"
    assert access(rules, "192.168.1.1") is None
    assert access(parse_allow(None), "127.0.0.1") == "R"   # default: loopback, read-only
    for bad in ("W:300.1.1.1", "W:127.0.0.1/40", "host.example", ",", "W:1.2.3.4.5"):
        with pytest.raises(ValueError):
            parse_allow(bad)


# --------------------------------------------------------------------------- read commands
SECTIONS = {"version": "VERSION", "config": "CONFIG", "summary": "SUMMARY", "devs": "DEVS",
            "pools": "POOLS", "stats": "STATS", "devdetails": "DEVDETAILS", "coin": "COIN"}


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_every_read_command_in_both_forms(rig, command):
    reply = ask_json(rig.port, command)
    status = reply["STATUS"][0]
    assert status["STATUS"] == "S", status
    assert isinstance(status["Code"], int) and isinstance(status["When"], int)
    assert status["Description"].startswith("sgm ")
    rows = reply[SECTIONS[command]]
    assert isinstance(rows, list) and rows
    plain = parse_plain(ask_plain(rig.port, f"{command}|"))
    assert plain[0]["STATUS"] == "S" and int(plain[0]["Code"]) == status["Code"]
    # the same rows, the same field names, in the plain form
    assert len(plain) == 1 + len(rows)
    for row, prow in zip(rows, plain[1:], strict=False):
        assert set(row) <= set(prow) | {"_section"}, set(row) - set(prow)
        if "_section" in prow:
            assert prow["_section"] == SECTIONS[command]


def test_a_plain_request_without_the_bar_and_json_without_parameter(rig):
    assert parse_plain(ask_plain(rig.port, "version"))[1]["SGM"]
    raw = ask(rig.port, b'{"command":"version"}')
    assert json.loads(raw[:-1])["VERSION"][0]["API"] == "3.7"


def test_summary_and_devs_equal_the_engine_telemetry_once_stopped():
    r = Rig(threads=2)
    try:
        wait_for(lambda: r.miner.summary()["accepted"] >= 5, "five accepted shares")
        r.miner.stop()   # the figures stand still: the API must give exactly the engine's
        r._sub.close()
        s = r.miner.summary()
        got = ask_json(r.port, "summary")["SUMMARY"][0]
        plain = parse_plain(ask_plain(r.port, "summary|"))[1]
        accepted = [e for e in r.shares if e.accepted]
        assert got["Accepted"] == s["accepted"] == len(accepted) == int(plain["Accepted"])
        assert got["Rejected"] == s["rejected"]
        # stale shares that were never sent are one number, not an event each
        assert got["Stale"] == s["stale"] >= sum(1 for e in r.shares if e.reason == "stale")
        assert got["Hardware Errors"] == s["hw_errors"] == 0
        assert got["Elapsed"] == int(s["elapsed_s"])
        assert got["MHS av"] == pytest.approx(s["hashrate"] / 1e6, rel=1e-12)
        # the decaying averages keep decaying after the stop: read after, never above
        assert 0 < got["MHS 5s"] <= s["rates"]["5s"] / 1e6
        assert 0 < got["MHS 1m"] <= s["rates"]["1m"] / 1e6
        assert got["Total MH"] == pytest.approx(s["hashes"] / 1e6, rel=1e-12)
        assert got["Best Share"] == int(s["best_share_diff"])
        # the API sums share difficulties from its own telemetry subscription (drained by now)
        wait_for(lambda: ask_json(r.port, "summary")["SUMMARY"][0]["Difficulty Accepted"]
                 == pytest.approx(sum(e.difficulty for e in accepted)), "difficulty accepted")
        assert float(plain["Total MH"]) == pytest.approx(s["hashes"] / 1e6, rel=1e-3)
        devs = ask_json(r.port, "devs")["DEVS"]
        assert [d["Device"] for d in devs] == [d["name"] for d in s["devices"]] == ["cpu0", "cpu1"]
        for row, d in zip(devs, s["devices"], strict=False):
            assert row["Accepted"] == d["accepted"]
            assert row["Hardware Errors"] == d["hw_errors"]
            assert row["Total MH"] == pytest.approx(d["hashes"] / 1e6, rel=1e-12)
            assert row["MHS av"] == pytest.approx(d["hashrate"] / 1e6, rel=1e-12)
            assert row["Enabled"] == "Y" and row["Impl"] == d["impl"]
            mine = [e for e in accepted if e.device == d["name"]]
            assert row["Difficulty Accepted"] == pytest.approx(sum(e.difficulty for e in mine))
        assert sum(row["Accepted"] for row in devs) == s["accepted"]
    finally:
        r.close()


def test_joined_commands_in_both_forms(rig):
    reply = ask_json(rig.port, "summary+devs+pools")
    assert set(reply) == {"summary", "devs", "pools", "id"}
    assert reply["summary"][0]["STATUS"][0]["STATUS"] == "S"
    assert reply["summary"][0]["SUMMARY"][0]["Accepted"] >= 3
    assert reply["devs"][0]["DEVS"][0]["Device"] == "cpu0"
    assert reply["pools"][0]["POOLS"][0]["Status"] == "Alive"
    plain = parse_plain(ask_plain(rig.port, "summary+devs|"))
    assert [p.get("STATUS") for p in plain if "STATUS" in p] == ["S", "S"]
    # a privileged command cannot ride along in a join
    joined = ask_json(rig.port, "summary+quit")
    assert joined["quit"][0]["STATUS"][0]["STATUS"] == "E"
    assert rig.quits == 0


def test_pyasic_reads_summary_devs_and_pools(rig):
    from pyasic.rpc.cgminer import CGMinerRPCAPI

    async def read() -> tuple[dict, dict, dict, dict]:
        api = CGMinerRPCAPI("127.0.0.1", port=rig.port)
        return (await api.summary(), await api.devs(), await api.pools(),
                await api.multicommand("summary", "devs", "pools"))

    summary, devs, pools, multi = asyncio.run(read())
    assert summary["SUMMARY"][0]["Accepted"] >= 3
    assert summary["SUMMARY"][0]["MHS av"] > 0
    assert devs["DEVS"][0]["Device"] == "cpu0"
    assert pools["POOLS"][0]["URL"].startswith("stratum+tcp://127.0.0.1:")
    assert multi["summary"][0]["SUMMARY"][0]["Accepted"] >= 3


# --------------------------------------------------------------------------- privileged
def test_privileged_commands_refused_outside_w_and_allowed_inside(rig):
    refused = ask_json(rig.port, "cpudisable", "0", src="127.0.0.2")
    assert refused["STATUS"][0]["STATUS"] == "E"
    assert refused["STATUS"][0]["Code"] == MSG_ACCDENY
    assert "Access denied" in refused["STATUS"][0]["Msg"]
    assert "Access denied" in ask_plain(rig.port, "quit|", src="127.0.0.2")
    assert rig.quits == 0 and rig.miner.devices[0].enabled
    # reading is allowed from 127.0.0.2
    assert ask_json(rig.port, "summary", src="127.0.0.2")["STATUS"][0]["STATUS"] == "S"
    # an address outside every entry is closed unanswered (a reset: its request is unread)
    try:
        unanswered = ask(rig.port, "summary|", src="127.0.0.3")
    except ConnectionResetError:
        unanswered = b""
    assert unanswered == b""

    # from 127.0.0.1 (W:) the device is switched off and stops hashing
    ok = ask_json(rig.port, "cpudisable", "0")
    assert ok["STATUS"][0]["STATUS"] == "S", ok
    assert ask_json(rig.port, "devs")["DEVS"][0]["Enabled"] == "N"

    def hashes() -> int:
        return ask_json(rig.port, "devs")["DEVS"][0]["Total MH"]

    def still() -> bool:   # no change over a quarter second: the batch in flight is done
        before = hashes()
        time.sleep(0.25)
        return hashes() == before
    wait_for(still, "the disabled device to stop hashing")
    before = hashes()
    time.sleep(0.5)
    assert hashes() == before
    assert ask_json(rig.port, "cpudisable", "0")["STATUS"][0]["STATUS"] == "I"  # already
    assert ask_json(rig.port, "ascenable", "0")["STATUS"][0]["STATUS"] == "S"
    wait_for(lambda: hashes() > before, "hashing to resume")
    assert ask_json(rig.port, "cpuenable", "5")["STATUS"][0]["STATUS"] == "E"
    assert ask_json(rig.port, "gpuenable", "0")["STATUS"][0]["STATUS"] == "E"  # no OpenCL
    assert ask_json(rig.port, "cpuenable", "")["STATUS"][0]["STATUS"] == "E"


def test_zero_resets_the_counters(rig):
    before = ask_json(rig.port, "summary")["SUMMARY"][0]
    assert before["Accepted"] >= 3
    reply = ask_json(rig.port, "zero", "all,false")
    assert reply["STATUS"][0]["STATUS"] == "S"
    after = ask_json(rig.port, "summary")["SUMMARY"][0]
    assert after["Accepted"] < before["Accepted"] or before["Accepted"] == 0
    assert after["Accepted"] <= rig.miner.summary()["accepted"] - before["Accepted"]
    assert ask_json(rig.port, "zero", "nonsense")["STATUS"][0]["STATUS"] == "E"


def test_quit_from_a_privileged_address_stops_sgm_cleanly(tmp_path):
    summary = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sgm", "-t", "1", "--devices", "cpu", "--difficulty", "14",
         "--jobs", "100", "--duration", "60", "--api-listen", "--api-port", "0",
         "--api-allow", "W:127.0.0.1", "--summary-json", str(summary)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        port = None
        assert proc.stderr is not None
        for line in proc.stderr:
            m = re.search(r"cgminer API on 127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "sgm did not print its API address"
        wait_for(lambda: ask_json(port, "summary")["SUMMARY"][0]["Accepted"] >= 1,
                 "an accepted share")
        bye = ask_json(port, "quit")
        assert bye["STATUS"][0]["Msg"] == "BYE"
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopping: API quit" in out
    assert json.loads(summary.read_text())["accepted"] >= 1


# --------------------------------------------------------------------------- malformed input
def test_malformed_requests_are_answered_or_closed_and_mining_goes_on(rig):
    accepted0 = rig.miner.summary()["accepted"]
    hashes0 = rig.miner.summary()["hashes"]
    # garbage
    assert "Invalid command" in ask(rig.port, b"\xff\xfe\x00garbage\x01").decode("utf-8", "replace")
    # an unknown command, both forms
    unknown = ask_json(rig.port, "frobnicate")
    assert unknown["STATUS"][0]["STATUS"] == "E" and unknown["STATUS"][0]["Code"] == MSG_INVCMD
    assert f"Code={MSG_INVCMD}" in ask_plain(rig.port, "frobnicate|")
    # broken JSON (the client says it is done) and JSON without a command
    broken = json.loads(ask(rig.port, b'{"command": "summ', shutdown=True)[:-1])
    assert broken["STATUS"][0]["Code"] == MSG_INVJSON
    assert b"STATUS=E" in ask(rig.port, b'["summary"]')   # not an object: a plain request
    assert json.loads(ask(rig.port, b'{"command": 5}')[:-1])["STATUS"][0]["STATUS"] == "E"
    # a 1 MiB request: an error reply, or the connection closed
    for big in (b'{"command":"' + b"a" * (1 << 20) + b'"}', b"summary|" + b"x" * (1 << 20)):
        try:
            reply = ask(rig.port, big)
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
        assert reply == b"" or b'"STATUS": "E"' in reply or b"STATUS=E" in reply, reply[:200]
    # a half-open connection: others are served meanwhile, and it is closed in the end
    with socket.create_connection(("127.0.0.1", rig.port), timeout=WAIT) as idle:
        idle.sendall(b'{"command":')
        assert ask_json(rig.port, "summary")["STATUS"][0]["STATUS"] == "S"
        rest = idle.recv(65536)   # the server gives up on it (request timeout) and answers
        assert rest == b"" or b"Invalid JSON" in rest
    with socket.create_connection(("127.0.0.1", rig.port), timeout=WAIT) as silent:
        assert silent.recv(1) == b""   # sent nothing: closed after the request timeout
    wait_for(lambda: rig.miner.summary()["accepted"] > accepted0, "mining to go on")
    assert rig.miner.summary()["hashes"] > hashes0


def test_a_hundred_clients_at_once(rig):
    replies: list[Any] = [None] * 100
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            form = i % 2
            if form:
                replies[i] = ask_json(rig.port, "summary+devs")["summary"][0]["STATUS"][0]
            else:
                replies[i] = {"STATUS": parse_plain(ask_plain(rig.port, "summary|"))[0]["STATUS"]}
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
    accepted0 = rig.miner.summary()["accepted"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not errors, errors[:3]
    assert all(r is not None and r["STATUS"] == "S" for r in replies)
    wait_for(lambda: rig.miner.summary()["accepted"] > accepted0, "mining to go on")


# --------------------------------------------------------------------------- pools
def test_pool_control_and_no_password_in_any_reply(tmp_path):
    pool_a = start_in_thread(difficulty_bits=14, jobs=None, job_interval=120.0)
    pool_b = start_in_thread(difficulty_bits=14, jobs=None, job_interval=120.0)
    miner = Miner(MinerConfig(threads=1, device_kinds=("cpu",),
                              pools=[PoolConfig(pool_a.url, "wa", SECRET)]))
    api = CgminerApi(miner, port=0, allow="W:127.0.0.1",
                     config_path=str(tmp_path / "sgm.json"))
    api.start()
    miner.start()
    port = api.port
    replies: list[bytes] = []

    def read_all() -> None:
        for cmd in READ_COMMANDS:
            replies.append(ask(port, json.dumps({"command": cmd})))
            replies.append(ask(port, f"{cmd}|"))
        replies.append(ask(port, "summary+devs+pools+config"))

    def pools() -> list[dict]:
        return ask_json(port, "pools")["POOLS"]

    try:
        wait_for(lambda: pools()[0]["Stratum Active"], "pool 0 to be active")
        added = ask_json(port, "addpool", f"{pool_b.url},wb,{SECRET2}")
        assert added["STATUS"][0]["STATUS"] == "S", added
        replies.append(json.dumps(added).encode())
        assert [p["User"] for p in pools()] == ["wa", "wb"]
        assert ask_json(port, "addpool", "only-a-url")["STATUS"][0]["STATUS"] == "E"
        assert ask_json(port, "addpool", "bogus://x,u,p")["STATUS"][0]["STATUS"] == "E"

        assert ask_json(port, "switchpool", "1")["STATUS"][0]["STATUS"] == "S"
        wait_for(lambda: any(p["Stratum Active"] and p["User"] == "wb" for p in pools()),
                 "the switch to pool b")
        wait_for(lambda: pool_b.stats.accepted >= 1, "a share accepted by pool b")
        read_all()
        # pool b is first now; disable it and mining moves back to pool a
        order = [p["User"] for p in pools()]
        assert order == ["wb", "wa"]
        assert ask_json(port, "disablepool", "0")["STATUS"][0]["STATUS"] == "S"
        assert pools()[0]["Status"] == "Disabled"
        wait_for(lambda: pools()[1]["Stratum Active"], "mining back on pool a")
        last = ask_json(port, "disablepool", "1")["STATUS"][0]
        assert last["STATUS"] == "E" and "last" in last["Msg"]
        assert ask_json(port, "enablepool", "0")["STATUS"][0]["STATUS"] == "S"
        assert ask_json(port, "poolpriority", "1,0")["STATUS"][0]["STATUS"] == "S"
        assert [p["User"] for p in pools()] == ["wa", "wb"]
        assert ask_json(port, "poolpriority", "0,0")["STATUS"][0]["STATUS"] == "E"
        assert ask_json(port, "switchpool", "7")["STATUS"][0]["STATUS"] == "E"
        wait_for(lambda: pools()[0]["Stratum Active"], "pool a active")
        active = ask_json(port, "removepool", "0")["STATUS"][0]
        assert active["STATUS"] == "E" and "active" in active["Msg"]
        assert ask_json(port, "removepool", "1")["STATUS"][0]["STATUS"] == "S"
        assert [p["User"] for p in pools()] == ["wa"]
        saved = ask_json(port, "save", "")
        assert saved["STATUS"][0]["STATUS"] == "S", saved
        replies.append(json.dumps(saved).encode())
        # the saved file is the user's own config: it keeps the password, sgm can read it
        data = json.loads((tmp_path / "sgm.json").read_text())
        assert data["pools"] == [{"url": pool_a.url, "user": "wa", "pass": SECRET}]
        read_all()
    finally:
        miner.stop()
        api.stop()
        pool_a.stop()
        pool_b.stop()
    blob = b"\n".join(replies)
    assert b"wa" in blob and b"wb" in blob
    assert SECRET.encode() not in blob and SECRET2.encode() not in blob


def test_an_api_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "sgm", "-t", "1", "--devices", "cpu",
                            "--api-listen", "--api-port", str(port), "--time-limit", "5"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=WAIT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1
    assert f"--api-port {port}" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv, message", [
    (["--api-allow", "W:127.0.0.1"], "need --api-listen"),
    (["--api-listen", "--api-allow", "W:999.0.0.1"], "--api-allow"),
    (["--api-listen", "--api-port", "70000"], "--api-port"),
])
def test_bad_api_options_are_usage_errors(argv, message, tmp_path):
    r = subprocess.run([sys.executable, "-m", "sgm", *argv], cwd=tmp_path, capture_output=True,
                       text=True, timeout=WAIT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_restart_runs_sgm_again_and_quit_then_stops_it(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "sgm", "-t", "1", "--devices", "cpu", "--difficulty", "14",
         "--jobs", "100", "--duration", "60", "--api-listen", "--api-port", "0",
         "--api-allow", "W:127.0.0.1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})

    def next_port() -> int:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = re.search(r"cgminer API on 127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
        pytest.fail("sgm did not print its API address")

    try:
        first = next_port()
        wait_for(lambda: ask_json(first, "summary")["SUMMARY"][0]["Accepted"] >= 1,
                 "an accepted share")
        assert ask_json(first, "restart")["STATUS"][0]["Msg"] == "RESTART"
        second = next_port()            # the same process (exec), run again: a fresh API
        assert proc.poll() is None
        assert ask_json(second, "version")["STATUS"][0]["STATUS"] == "S"
        assert ask_json(second, "quit")["STATUS"][0]["Msg"] == "BYE"
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopping: API restart" in out and "stopping: API quit" in out
    assert out.count("=== sgm final statistics ===") == 2


def test_gpudisable_switches_an_opencl_device_off():
    """The OpenCL device (PoCL's CPU device where there is no GPU: scripts/setup.sh installs
    it) is gpu 0; gpudisable stops its hashing, gpuenable resumes it."""
    from sgm.devices import detect_opencl

    found, reason = detect_opencl()
    if not found:
        pytest.fail(f"no OpenCL device (scripts/setup.sh installs PoCL): {reason}")
    r = Rig(allow="W:127.0.0.1", threads=1, device_kinds=("cpu", "opencl"))
    try:
        devs = ask_json(r.port, "devs")["DEVS"]
        gpu = next(d for d in devs if d["Name"] == "OCL")
        assert gpu["ID"] == 0 and gpu["Kind"] == "opencl"
        details = ask_json(r.port, "devdetails")["DEVDETAILS"]
        assert details[gpu["ASC"]]["Driver"] == "opencl"
        ok = ask_json(r.port, "gpudisable", "0")
        assert ok["STATUS"][0]["STATUS"] == "S", ok

        def total_mh() -> float:
            return ask_json(r.port, "devs")["DEVS"][gpu["ASC"]]["Total MH"]

        def still() -> bool:
            before = total_mh()
            time.sleep(0.3)
            return total_mh() == before
        assert ask_json(r.port, "devs")["DEVS"][gpu["ASC"]]["Enabled"] == "N"
        wait_for(still, "the OpenCL device to stop hashing")
        assert r.miner.device(gpu["Device"]).enabled is False
        assert ask_json(r.port, "devs")["DEVS"][0]["Enabled"] == "Y"   # the CPU goes on
        before = total_mh()
        assert ask_json(r.port, "gpuenable", "0")["STATUS"][0]["STATUS"] == "S"
        wait_for(lambda: total_mh() > before, "the OpenCL device to hash again")
    finally:
        r.close()
