"""The whole miner over real sockets: the embedded pool's own checks accept every share,
devices stop and resume while the others keep hashing, a misbehaving pool is refused with a
clear log line, and the `sgm` command line keeps its contract."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sgm.hashing import meets_target
from sgm.miner import Miner, MinerConfig, PoolConfig
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {"elapsed_s", "hashes", "hashrate", "accepted", "rejected", "stale", "hw_errors",
                "best_share_diff", "devices"}
DEVICE_KEYS = {"name", "kind", "impl", "hashes", "hashrate", "accepted", "hw_errors",
               "latency_ms", "batch_size"}


def assert_books_agree(pool_stats, summary) -> None:
    """The miner's accepted / rejected / stale agree with the pool's own accounting: the
    same accepted, the same rejections (none expected), and every share the pool refused
    as stale is among the miner's stale (which also counts those it never sent).  A share
    whose answer never came back (the connection dropped first) is counted by neither side
    of the miner's books, as "unanswered": the pool may have counted it."""
    refused_stale = pool_stats.rejected.get("stale", 0) + pool_stats.rejected.get("job not found", 0)
    unanswered = summary.get("unanswered", 0)
    assert summary["accepted"] <= pool_stats.accepted <= summary["accepted"] + unanswered
    assert summary["rejected"] == pool_stats.rejected_total - refused_stale == 0, pool_stats.rejected
    assert summary["stale"] + unanswered >= refused_stale
    assert_ledger_balances(summary)


def assert_ledger_balances(summary) -> None:
    """Every candidate a device reported is accounted for exactly once, and every share
    found has one fate (the summary's ledger, at stop: nothing is in flight any more)."""
    s = summary
    assert s["candidates"] == (s["found"] + s["stale_unchecked"] + s["rules_dropped"]
                               + s["duplicates"] + s["hw_errors"]), s
    assert s["found"] == (s["accepted"] + s["rejected"] + s["rejected_stale"]
                          + s["unanswered"] + s["unsent"]), s
    assert s["stale"] == s["stale_unchecked"] + s["unsent"] + s["rejected_stale"], s


@pytest.mark.slow
def test_mining_the_embedded_pool_every_share_is_accepted_by_the_pools_own_checks():
    # two jobs, then as long as five shares take (a second here; longer beside busy
    # processes, which the nice-19 workers yield to), and every device had a share
    # accepted: every job reached both
    miner = Miner(MinerConfig(threads=2, local_jobs=None, local_job_interval=2.0,
                              local_difficulty_bits=18))
    miner.start()
    try:
        tel = miner.telemetry
        assert wait_until(lambda: miner.local_pool.stats.accepted >= 5
                        and miner.local_pool.stats.jobs_issued >= 2
                        and all(tel.device(n).accepted >= 1 for n in ("cpu0", "cpu1")),
                        timeout=120)
    finally:
        miner.stop()
    summary = miner.summary()
    stats = miner.local_pool.stats
    assert stats.accepted >= 5
    assert_books_agree(stats, summary)
    assert summary["hw_errors"] == 0
    for share in stats.accepted_shares:  # the pool's record, re-verified independently
        assert meets_target(bytes.fromhex(share.hash_hex)[::-1], miner.local_pool.target)
    assert SUMMARY_KEYS <= set(summary)
    assert {d["name"] for d in summary["devices"]} == {"cpu0", "cpu1"}
    for d in summary["devices"]:
        assert DEVICE_KEYS <= set(d) and d["kind"] == "cpu" and d["hashes"] > 0
        assert set(d["rates"]) == {"5s", "1m", "5m", "15m"} and d["rates"]["5s"] > 0
        assert 0 < d["best_share_diff"] <= summary["best_share_diff"]


def test_a_device_stopped_while_mining_stops_within_a_second_and_resumes():
    miner = Miner(MinerConfig(threads=2, local_jobs=None, local_difficulty_bits=30))
    miner.start()
    tel = miner.telemetry
    try:
        assert wait_until(lambda: all(tel.device(n).hashes > 0 for n in ("cpu0", "cpu1")))
        miner.set_device_enabled("cpu0", False)
        assert wait_until(lambda: not miner.device("cpu0").hashing, timeout=1.0)
        frozen = tel.device("cpu0").hashes
        other = tel.device("cpu1").hashes
        # the other keeps going (its hashes count at the end of each batch: ~0.1 s on an
        # idle machine, seconds when busy processes starve the nice-19 workers)
        assert wait_until(lambda: tel.device("cpu1").hashes > other, timeout=60)
        assert tel.device("cpu0").hashes == frozen          # stopped all along
        assert tel.device("cpu0").to_dict()["enabled"] is False
        miner.set_device_enabled("cpu0", True)
        assert wait_until(lambda: tel.device("cpu0").hashes > frozen, timeout=60)
    finally:
        miner.stop()
    with pytest.raises(KeyError, match="nope"):
        miner.set_device_enabled("nope", True)


class BadPool:
    """A Stratum server that sends a zero share target and an empty job, nothing else."""

    def __init__(self):
        self.port = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self):
        async def handle(reader, writer):
            while line := await reader.readline():
                msg = json.loads(line)
                if msg.get("method") == "mining.subscribe":
                    reply = {"id": msg["id"], "result": [[], "00000001", 4], "error": None}
                else:
                    reply = {"id": msg["id"], "result": True, "error": None}
                writer.write((json.dumps(reply) + "\n").encode())
                if msg.get("method") == "mining.authorize":
                    writer.write(b'{"id":null,"method":"mining.set_difficulty","params":[0]}\n')
                    writer.write(b'{"id":null,"method":"mining.notify","params":'
                                 b'["7","","","",[],"","","",true]}\n')
                await writer.drain()

        self.stop_event = asyncio.Event()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        async with server:
            await self.stop_event.wait()

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(5)


def test_a_pool_sending_target_zero_or_an_empty_job_is_refused_with_a_clear_log(caplog):
    pool = BadPool()
    pool.thread.start()
    assert pool.ready.wait(5)
    caplog.set_level(logging.WARNING)
    miner = Miner(MinerConfig(threads=1, pools=[PoolConfig(f"stratum+tcp://127.0.0.1:{pool.port}",
                                                           "w", "x")]))
    miner.start()
    try:
        assert wait_until(lambda: "refused job" in caplog.text, timeout=5)
        time.sleep(0.3)
        assert miner.scheduler.current_job is None
        assert miner.telemetry.snapshot()["hashes"] == 0
    finally:
        miner.stop()
        pool.stop()
    assert "set_difficulty" in caplog.text and "difficulty must be > 0" in caplog.text
    assert "'7'" in caplog.text  # the refused job is named


# ------------------------------------------------------------------ command line
def sgm(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sgm", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.slow
def test_sgm_mines_the_embedded_pool_and_writes_the_summary(tmp_path):
    out = tmp_path / "summary.json"
    r = sgm("--jobs", "2", "--duration", "2", "--difficulty", "18", "-t", "2",
            "--summary-json", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["accepted"] > 0 and summary["rejected"] == 0 and summary["hw_errors"] == 0
    assert summary["hashes"] > 1e6 and summary["hashrate"] > 0
    assert len(summary["devices"]) == 2
    for d in summary["devices"]:
        assert DEVICE_KEYS <= set(d)
    text = r.stdout
    assert "job 1" in text and "job 2" in text
    assert "device cpu0" in text and "score" in text and "batch" in text
    assert "share cpu" in text and "accepted" in text
    assert "final statistics" in text


def test_sigterm_stops_cleanly_with_final_statistics(tmp_path):
    out = tmp_path / "s.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sgm", "--jobs", "100", "-t", "1",
                             "--summary-json", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:     # mining for real: a share went through
            line = proc.stdout.readline()
            if line.startswith("[") and " share cpu0 " in line or not line:
                break
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopping: SIGTERM" in stdout and "final statistics" in stdout
    assert json.loads(out.read_text())["hashes"] > 0


def test_time_limit_stops_a_run(tmp_path):
    out = tmp_path / "summary.json"
    r = sgm("--jobs", "100", "--time-limit", "1.5", "-t", "1", "-q", "--summary-json", str(out))
    assert r.returncode == 0, r.stderr
    assert "final statistics" in r.stdout and "share cpu" not in r.stdout
    # the time limit ended it, not the 100 jobs of 15 s (behaviour, by sgm's own clock)
    assert 1.5 <= json.loads(out.read_text())["elapsed_s"] < 100 * 15


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--threads", "0"], "--threads"),
        (["--jobs", "x"], "--jobs"),
        (["--difficulty", "300"], "--difficulty"),
        (["--devices", "gpu"], "--devices"),
        (["-o", "http//nonsense"], "http//nonsense"),
        (["-u", "wallet"], "-o"),
        (["--solo"], "--solo"),
        (["--impl", "nope"], "nope"),
        (["--bogus-flag"], "--bogus-flag"),
        (["-c", "/nonexistent/sgm.json"], "/nonexistent/sgm.json"),
    ],
)
def test_bad_mining_input_exits_2_with_a_message(args, fragment):
    r = sgm(*args, timeout=30)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert fragment in r.stderr


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"threads": "two"}', "threads must be a whole number in 1..1024, got a string"),
        ('{"colour": "blue"}', "unknown key"),
        ('{"pools": [{"user": "x"}]}', "pools[0]"),
    ],
)
def test_bad_config_files_exit_2_naming_the_problem(tmp_path, content, fragment):
    cfg = tmp_path / "sgm.json"
    cfg.write_text(content)
    r = sgm("-c", str(cfg), timeout=30)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert fragment in r.stderr


def test_a_config_file_drives_the_run(tmp_path):
    cfg = tmp_path / "sgm.json"
    out = tmp_path / "s.json"
    cfg.write_text(json.dumps({"threads": 1, "jobs": 1, "duration": 1, "difficulty": 16,
                               "summary-json": str(out), "quiet": True}))
    r = sgm("-c", str(cfg))
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert [d["name"] for d in summary["devices"]] == ["cpu0"]


@pytest.mark.slow
def test_sgm_mines_a_pool_given_with_o_u_p(tmp_path):
    """`sgm -o stratum+tcp://... -u ... -p ...` against a real pool server in another thread:
    the pool's own accounting matches what the miner reports."""
    from sgm.pool import PoolThread

    # 12-bit shares and one job: the first batch holds shares even when busy processes
    # starve the nice-19 worker (job changes and stale shares have tests of their own)
    pool = PoolThread(difficulty_bits=12, jobs=None, job_interval=30.0).start()
    out = tmp_path / "s.json"
    try:
        r = sgm("-o", pool.url, "-u", "wallet.rig1", "-p", "x", "-t", "1", "--time-limit", "5",
                "--summary-json", str(out))
        stats = pool.stats
    finally:
        pool.stop()
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert summary["accepted"] > 0
    assert_books_agree(stats, summary)
    assert "wallet.rig1" in stats.workers
    assert f"pools: {pool.url} (wallet.rig1)" in r.stdout


@pytest.mark.slow
def test_a_flood_of_shares_is_throttled_not_dropped():
    """At 10-bit shares (thousands a second) submissions in flight stay bounded, devices
    wait for the pool instead of piling shares up, and nothing is lost or rejected."""
    from sgm import miner as miner_mod

    m = Miner(MinerConfig(threads=2, local_jobs=None, local_job_interval=60.0,
                          local_difficulty_bits=10))
    peak = 0
    m.start()
    try:   # until 1000 shares went through (a second on an idle box; longer on a busy one)
        deadline = time.monotonic() + 120
        while m.telemetry.total.accepted < 1000 and time.monotonic() < deadline:
            peak = max(peak, m.submits_in_flight)
            time.sleep(0.005)
    finally:
        m.stop()
    s = m.summary()
    assert s["accepted"] >= 1000
    assert s["rejected_reasons"] == {}
    assert_books_agree(m.local_pool.stats, s)
    assert peak <= miner_mod.MAX_SUBMITS_IN_FLIGHT


@pytest.mark.slow
def test_when_the_pool_drops_the_connection_devices_pause_and_mining_resumes():
    from sgm.pool import PoolThread

    pool = PoolThread(difficulty_bits=18, jobs=None, job_interval=30.0).start()
    miner = Miner(MinerConfig(threads=2, pools=[PoolConfig(pool.url, "w", "x")]))
    miner.start()
    tel = miner.telemetry
    try:
        assert wait_until(lambda: tel.total.accepted >= 3)
        assert pool.disconnect_all() == 1
        assert wait_until(lambda: miner.scheduler.current_job is None, timeout=5)
        before = tel.total.accepted
        # the client reconnects on its own, gets a fresh (clean) job and shares flow again
        assert wait_until(lambda: tel.total.accepted > before + 2, timeout=20)
        assert pool.stats.connections_total >= 2
    finally:
        miner.stop()
        pool.stop()
    assert_books_agree(pool.stats, miner.summary())   # nothing the pool refused


def test_on_a_terminal_a_live_status_line_stays_at_the_bottom():
    import pty

    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sgm", "-t", "1", "--jobs", "1",
                             "--duration", "2.5", "--difficulty", "17"], stdout=slave,
                            stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0
    text = out.decode()
    # the status is rewritten in place (carriage return + erase line), once a second
    live = [part for part in text.split("\r\x1b[K") if "(5s)" in part]
    assert len(live) >= 2
    assert "status:" not in text  # no scrolling status lines on a terminal
    # share lines still scroll above it, each ending with a newline, and the run ends cleanly
    # (17-bit shares: several a second even on one loaded core)
    assert re.search(r"share cpu0 nonce [0-9a-f]{8} .*accepted\r\n", text)
    assert "final statistics" in text


class WorkRecorder:
    """Wraps a Scheduler's job switches and keeps every generation the queue enumerated
    and its job (the CPU workers pull from the native queue directly)."""

    def __init__(self, sched) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[int, object] = {}
        switch = sched._switch_locked

        def rec_switch(job, clean, *rest):
            gen = switch(job, clean, *rest)
            with self.lock:
                self.jobs[gen] = job
            return gen

        sched._switch_locked = rec_switch

    @property
    def generations(self) -> set[int]:
        with self.lock:
            return set(self.jobs)


@pytest.mark.slow
def test_a_higher_difficulty_mid_job_applies_at_once_without_hashing_anything_twice():
    """A pool's vardiff raises the difficulty minutes into every connection: the current
    work carries on where it was (no range scanned twice, no duplicate suppressed), shares
    found from then on meet the new target (no rejects), and a lower difficulty waits for
    the next job."""
    from sgm.hashing import difficulty_to_target
    from sgm.pool import PoolThread

    pool = PoolThread(difficulty_bits=14, jobs=None, job_interval=60.0).start()
    miner = Miner(MinerConfig(threads=2, pools=[PoolConfig(pool.url, "w", "x")]))
    rec = WorkRecorder(miner.scheduler)
    miner.start()
    try:
        assert wait_until(lambda: miner.telemetry.total.accepted >= 3)
        job_id = miner.scheduler.current_job.job_id
        harder = 2 ** (18 - 32)                       # 18 leading zero bits
        pool.set_difficulty(harder)
        assert wait_until(lambda: miner.scheduler.current_target == difficulty_to_target(harder),
                        timeout=15)
        assert miner.scheduler.current_job.job_id == job_id   # same job, retargeted
        accepted = pool.stats.accepted
        assert wait_until(lambda: pool.stats.accepted >= accepted + 3, timeout=60)
        assert len(rec.generations) == 1             # the queue never started the job again
        pool.set_difficulty(2 ** (12 - 32))                # easier: waits for the next job
        assert wait_until(lambda: miner.client.difficulty == 2 ** (12 - 32), timeout=15)
        assert miner.scheduler.current_target == difficulty_to_target(harder)
        pool.new_job(clean=True)
        assert wait_until(lambda: miner.scheduler.current_target
                        == difficulty_to_target(2 ** (12 - 32)), timeout=15)
    finally:
        miner.stop()
        pool.stop()
    summary = miner.summary()
    # a nonce range scanned twice would find its shares twice: none was
    assert miner.telemetry.total.duplicates_suppressed == 0
    assert_books_agree(pool.stats, summary)
    assert "low difficulty" not in pool.stats.rejected


# ------------------------------------------------------------------ start, stop, counting
def test_a_failed_start_stops_everything_it_started_and_restores_the_switch_interval(monkeypatch):
    import socket

    from sgm.devices.cpu import CpuDevice

    before = sys.getswitchinterval()

    def broken_start(self, scheduler):
        raise RuntimeError("device cannot start")

    monkeypatch.setattr(CpuDevice, "start", broken_start)
    miner = Miner(MinerConfig(threads=1, local_jobs=None))
    with pytest.raises(RuntimeError, match="device cannot start"):
        miner.start()
    assert not miner.running
    assert not any(t.name == "sgm-net" and t.is_alive() for t in threading.enumerate())
    port = miner.local_pool.port                  # the embedded pool was up: now it is closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert sys.getswitchinterval() == before


def test_a_network_side_that_fails_to_start_is_reported_and_cleaned_up(monkeypatch):
    from sgm import pool as pool_module

    async def refuse(self):
        raise OSError("address in use")

    monkeypatch.setattr(pool_module.LocalPool, "start", refuse)
    before = sys.getswitchinterval()
    miner = Miner(MinerConfig(threads=1))
    with pytest.raises(RuntimeError, match="network start failed: address in use"):
        miner.start()
    assert not any(t.name == "sgm-net" and t.is_alive() for t in threading.enumerate())
    assert sys.getswitchinterval() == before


def test_mining_leaves_the_process_switch_interval_alone():
    """The workers hash without the GIL: nothing needs a shorter switch interval, and a
    library must not change a process-wide setting behind its host's back."""
    before = sys.getswitchinterval()
    miner = Miner(MinerConfig(threads=1, local_jobs=None))
    miner.start()
    try:
        assert wait_until(lambda: miner.telemetry.total.hashes > 0)
        assert sys.getswitchinterval() == before
    finally:
        miner.stop()
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("verdict,counted", [
    (("accepted", True, None, None, True), "accepted"),
    (("low", False, "Low difficulty share", 23, True), "rejected"),
    (("stale by code", False, "Job not found", 21, True), "stale"),
    (("stale by text", False, "Stale share", 20, True), "stale"),
    (("never sent", False, "not connected", None, False), "stale"),
    (("no answer", None, "no answer", None, True), "unanswered"),
])
def test_each_pool_verdict_is_counted_once_in_the_right_column(verdict, counted):
    from sgm.jobs import Share
    from sgm.stratum.client import Verdict

    _, accepted, reason, code, sent = verdict
    miner = Miner(MinerConfig(threads=1))
    share = Share("j", "00", "00000000", "00000001", None, bytes(32), 1.0)
    miner._count_verdict("cpu0", share, Verdict(accepted, reason, code, sent))
    snap = miner.telemetry.snapshot()
    got = {"accepted": snap["accepted"], "rejected": snap["rejected"], "stale": snap["stale"],
           "unanswered": miner.unanswered}
    assert got == {k: int(k == counted) for k in got}


def test_a_share_found_as_the_loop_closes_is_counted_stale_not_lost(monkeypatch):
    """The network loop closes between the check and the hand-over: the share is counted
    (stale, never sent), its slot freed, and no coroutine is left un-awaited."""
    import gc
    import warnings

    from sgm.jobs import Share

    miner = Miner(MinerConfig(threads=1))
    loop = asyncio.new_event_loop()
    miner._loop, miner.client, miner._running = loop, object(), True

    def closed(coro, loop):
        raise RuntimeError("Event loop is closed")

    monkeypatch.setattr(asyncio, "run_coroutine_threadsafe", closed)
    share = Share("j", "00", "00000000", "00000001", None, bytes(32), 1.0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            miner._submit_from_device(share, "cpu0")
            gc.collect()
    finally:
        miner._running = False
        loop.close()
    assert miner.telemetry.snapshot()["stale"] == 1
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert miner.submits_in_flight == 0   # the slot came back


# ------------------------------------------------------------------ BIP 310 at real pools
@pytest.mark.slow
@pytest.mark.parametrize("reading", ["bip310", "ckpool", "xor"])
def test_every_share_is_valid_however_the_pool_reads_rolled_version_bits(reading):
    """Bitcoin Core's regtest templates have version 0x30000000: bit 28 lies inside the
    rolling mask.  Pools read mining.submit's sixth parameter as BIP 310 says, as ckpool
    does (job | bits) or as public-pool does (job ^ bits); sgm's shares must be valid under
    each.  A 0x20000000 job still rolls (all three readings agree there)."""
    from sgm.pool import PoolThread

    # 18-bit shares: a few dozen a second at most, so the pool's log of accepted shares
    # (it keeps the latest KEEP_ACCEPTED_SHARES) still holds the first job's shares
    pool = PoolThread(difficulty_bits=18, jobs=None, job_interval=60.0, version=0x30000000,
                      version_reading=reading).start()
    miner = Miner(MinerConfig(threads=1, pools=[PoolConfig(pool.url, "w", "x")]))
    miner.start()
    try:
        assert wait_until(lambda: pool.stats.accepted >= 10, timeout=60)
        pool.new_job(clean=True, version=0x20000000)
        accepted = pool.stats.accepted
        assert wait_until(lambda: pool.stats.accepted >= accepted + 10, timeout=60)
    finally:
        miner.stop()
        pool.stop()
    stats, summary = pool.stats, miner.summary()
    assert_books_agree(stats, summary)
    versions = {a.version for a in stats.accepted_shares}
    assert 0x30000000 in versions                        # mined as is, no rolling
    assert any(v & 0x1FFFE000 and v & ~0x1FFFE000 == 0x20000000 for v in versions)  # rolled


@pytest.mark.slow
def test_a_mask_narrowed_mid_job_binds_every_later_share():
    from sgm.pool import PoolThread

    # 18-bit shares, so the pool's bounded log of accepted shares is never trimmed here
    pool = PoolThread(difficulty_bits=18, jobs=None, job_interval=60.0).start()
    miner = Miner(MinerConfig(threads=2, pools=[PoolConfig(pool.url, "w", "x")]))
    rec = WorkRecorder(miner.scheduler)
    miner.start()
    try:
        assert wait_until(lambda: pool.stats.accepted >= 5, timeout=60)
        narrow = 0x00F00000
        assert pool.set_version_mask(narrow) == 1
        assert wait_until(lambda: any(j.version_mask == narrow for j in list(rec.jobs.values())),
                        timeout=15)
        accepted = pool.stats.accepted
        assert wait_until(lambda: pool.stats.accepted >= accepted + 10, timeout=60)
    finally:
        miner.stop()
        pool.stop()
    stats, summary = pool.stats, miner.summary()
    assert_books_agree(stats, summary)
    assert len(stats.accepted_shares) == stats.accepted, "the pool's share log was trimmed"
    later = stats.accepted_shares[accepted:]
    assert later and all((a.version ^ 0x20000000) & ~narrow == 0 for a in later)
    # the new enumeration repeats nothing: no share was found twice
    assert miner.telemetry.total.duplicates_suppressed == 0


def test_pool_status_shows_each_pool_its_state_difficulty_and_submit_latency():
    """Miner.pool_status() (the desktop app's pool table): the dead first pool reads
    disconnected, the live failover connected and active with the pool's difficulty and
    the measured round trip of an answered share; the embedded pool is one "local" row;
    after stop every pool reads disconnected."""
    import socket

    from sgm.pool import PoolThread

    with socket.socket() as s:   # a port nobody listens on: the first pool is dead
        s.bind(("127.0.0.1", 0))
        dead = f"stratum+tcp://127.0.0.1:{s.getsockname()[1]}"
    pool = PoolThread(difficulty_bits=16, jobs=None, job_interval=30.0).start()
    miner = Miner(MinerConfig(threads=1, pools=[PoolConfig(dead, "w1", "x"),
                                                PoolConfig(pool.url, "w2", "y")]))
    assert [r["state"] for r in miner.pool_status()] == ["disconnected", "disconnected"]
    miner.start()
    try:
        assert wait_until(lambda: miner.telemetry.total.accepted >= 1, timeout=60)
        rows = miner.pool_status()
    finally:
        miner.stop()
        pool.stop()
    assert [(r["url"], r["user"]) for r in rows] == [(dead, "w1"), (pool.url, "w2")]
    first, second = rows
    assert first["state"] in ("disconnected", "connecting") and not first["active"]
    assert first["difficulty"] is None and first["last_submit_ms"] is None
    assert second["state"] == "connected" and second["active"]
    assert second["difficulty"] == pytest.approx(2.0 ** (16 - 32), rel=1e-3)
    assert second["last_submit_ms"] is not None and second["last_submit_ms"] > 0
    assert [r["state"] for r in miner.pool_status()] == ["disconnected", "disconnected"]

    local = Miner(MinerConfig(threads=1, local_jobs=None, local_difficulty_bits=16))
    local.start()
    try:
        assert wait_until(lambda: local.telemetry.total.accepted >= 1, timeout=60)
        (row,) = local.pool_status()
    finally:
        local.stop()
    assert row["state"] == "local" and row["active"] and row["url"] == local.local_pool.url
    assert row["difficulty"] == pytest.approx(2.0 ** (16 - 32), rel=1e-3) and row["last_submit_ms"] > 0
    assert local.pool_status()[0]["active"] is False


def test_pool_status_says_why_a_pool_is_unreachable_and_when_it_is_tried_again():
    """A refused connection: the row carries the reason in plain words (not errno text)
    and, while the client waits to reconnect, the seconds left; an unknown host says so."""
    import socket

    with socket.socket() as s:   # bound, never listening: connections refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        miner = Miner(MinerConfig(threads=1, pools=[
            PoolConfig(f"stratum+tcp://127.0.0.1:{port}", "w1", "x"),
            PoolConfig("stratum+tcp://no-such-host.invalid:3333", "w2", "x")]))
        miner.start()
        try:
            seen: list[list[dict]] = []

            def waiting() -> bool:
                rows = miner.pool_status()
                seen.append(rows)
                return any(r["retry_in_s"] is not None for r in rows) and all(
                    r["error"] for r in rows)
            assert wait_until(waiting, timeout=60), seen[-1]
            rows = seen[-1]
        finally:
            miner.stop()
    refused, unknown = rows
    assert refused["error"] == f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert unknown["error"] == "cannot connect to no-such-host.invalid:3333: unknown host"
    (retry,) = [r["retry_in_s"] for r in rows if r["retry_in_s"] is not None]
    assert 0.0 <= retry <= 30.0
    assert not refused["active"] and refused["state"] in ("disconnected", "connecting")
    after = miner.pool_status()
    assert all(r["error"] is None and r["retry_in_s"] is None for r in after)


def test_devices_named_at_start_start_switched_off_and_never_hash_until_switched_on():
    miner = Miner(MinerConfig(threads=2, local_jobs=None, local_difficulty_bits=20))
    miner.start(disabled=["cpu1", "no-such-device"])
    try:
        assert wait_until(lambda: miner.telemetry.device("cpu0").hashes > 0, timeout=60)
        time.sleep(0.5)
        s = miner.summary()
        by_name = {d["name"]: d for d in s["devices"]}
        assert by_name["cpu1"]["hashes"] == 0 and by_name["cpu1"]["enabled"] is False
        assert by_name["cpu0"]["enabled"] is True
        miner.set_device_enabled("cpu1", True)
        assert wait_until(lambda: miner.telemetry.device("cpu1").hashes > 0, timeout=60)
    finally:
        miner.stop()


def test_submit_slots_are_taken_and_given_in_bulk_and_never_over_given():
    """The bound on shares in flight: a drain takes what is free at once; a waiting
    collector gets a slot as soon as a verdict gives one back; giving back more than was
    taken is a bug, told at once."""
    import threading

    from sgm.miner import SubmitSlots

    slots = SubmitSlots(8)
    assert slots.take_upto(5) == 5 and slots.take_upto(5) == 3 and slots.in_use == 8
    assert slots.take_upto(1) == 0 and not slots.take_one(timeout=0.01)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(slots.take_one(timeout=30)))
    waiter.start()
    slots.give(2)
    waiter.join(30)
    assert got == [True] and slots.in_use == 7
    slots.give(7)
    assert slots.in_use == 0
    with pytest.raises(ValueError, match="only 0 taken"):
        slots.give(1)
