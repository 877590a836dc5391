"""How fast sgm answers its pool while it mines on a busy machine.

A small Stratum pool (its own process, written here from the protocol) sends
``mining.ping`` every 0.2 s and a new clean job every 2 s, checks every share it gets with
hashlib, and measures the time from each ping written to its answer read.  sgm runs as
users run it (``sgm -o ... -t N --devices cpu``), beside ``--busy`` processes that spin at
normal priority (``python3 -c "while 1: pass"``).  Prints the answer-time percentiles, the
shares found and the pool's verdicts.

    python benchmarks/ping_latency.py [--seconds 40] [--busy 2] [--threads 2] [--json]

Goal (issue "the hot loop all native"): p99 <= 50 ms, worst <= 500 ms with two busy
processes.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (path setup)
from _common import percentile

from sgm.hashing import bits_to_target, meets_target, sha256d
from sgm.jobs import Job

ROOT = Path(__file__).resolve().parents[1]
# a real coinbase split around the extranonces (block 250,000-era shape), no merkle branch
COINB1 = ("02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
          "25036e052500")
COINB2 = ("ffffffff02dbd4250000000000434104466d7fcae563e5cb09a0d1870bb580344804617879a14949cf"
          "22285f1bae3f276728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278aac"
          "00000000")
EXTRANONCE1 = "0000beef"


class PingPool:
    """A Stratum v1 pool that pings: one connection at a time is enough here."""

    def __init__(self, share_bits: int, ping_interval: float, job_interval: float) -> None:
        self.share_bits = share_bits
        self.ping_interval = ping_interval
        self.job_interval = job_interval
        self.rtts: list[float] = []
        self.sent_pings: dict[int, float] = {}
        self.accepted = self.rejected = 0
        self.jobs: dict[str, Job] = {}
        self.job_seq = 0

    def notify_params(self) -> list:
        self.job_seq += 1
        job_id = f"{self.job_seq:x}"
        prevhash = f"{self.job_seq:08x}" + "00" * 28
        params = [job_id, prevhash, COINB1, COINB2, [], "20000000", "1929ee8d",
                  f"{int(time.time()):08x}", True]
        self.jobs = {job_id: Job.from_notify(params, extranonce1=EXTRANONCE1,
                                             extranonce2_size=4,
                                             target=bits_to_target(self.share_bits))}
        return params

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(obj: dict) -> None:
            writer.write((json.dumps(obj) + "\n").encode())

        tasks: list[asyncio.Task] = []

        async def pinger() -> None:
            n = 1_000_000
            while True:
                await asyncio.sleep(self.ping_interval)
                n += 1
                self.sent_pings[n] = time.perf_counter()
                send({"id": n, "method": "mining.ping", "params": []})
                await writer.drain()

        async def jobs() -> None:
            while True:
                await asyncio.sleep(self.job_interval)
                send({"id": None, "method": "mining.notify", "params": self.notify_params()})
                await writer.drain()

        try:
            while line := await reader.readline():
                now = time.perf_counter()
                msg = json.loads(line)
                mid, method = msg.get("id"), msg.get("method")
                if method is None and mid in self.sent_pings:
                    self.rtts.append(now - self.sent_pings.pop(mid))
                elif method == "mining.subscribe":
                    send({"id": mid, "result": [[["mining.notify", "1"]], EXTRANONCE1, 4],
                          "error": None})
                elif method == "mining.authorize":
                    send({"id": mid, "result": True, "error": None})
                    diff = 2.0 ** (self.share_bits - 32)
                    send({"id": None, "method": "mining.set_difficulty", "params": [diff]})
                    send({"id": None, "method": "mining.notify", "params": self.notify_params()})
                    tasks = [asyncio.create_task(pinger()), asyncio.create_task(jobs())]
                elif method == "mining.submit":
                    ok = self.check(msg.get("params", []))
                    self.accepted += ok
                    self.rejected += not ok
                    send({"id": mid, "result": ok, "error": None if ok else [23, "bad", None]})
                elif mid is not None:
                    send({"id": mid, "result": None, "error": [20, "unsupported", None]})
                await writer.drain()
        finally:
            for t in tasks:
                t.cancel()
            writer.close()

    def check(self, params: list) -> bool:
        try:
            _worker, job_id, en2, _ntime, nonce = params[:5]
            job = self.jobs.get(job_id)
            if job is None:
                return False
            header = job.header(bytes.fromhex(en2), int(nonce, 16))
            return meets_target(sha256d(header), job.target)
        except (ValueError, TypeError):
            return False


def serve(port_file: str, share_bits: int) -> None:
    pool = PingPool(share_bits, 0.2, 2.0)

    async def main() -> None:
        server = await asyncio.start_server(pool.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        Path(port_file).write_text(str(port))
        async with server:
            await stop.wait()
        Path(port_file + ".json").write_text(json.dumps(
            {"rtts": pool.rtts, "accepted": pool.accepted, "rejected": pool.rejected}))

    asyncio.run(main())


def run(seconds: float, busy: int, threads: int, share_bits: int) -> dict:
    port_file = f"/tmp/sgm-ping-{os.getpid()}"
    pool = subprocess.Popen([sys.executable, __file__, "--serve", port_file,
                             "--share-bits", str(share_bits)])
    spinners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(busy)]
    try:
        deadline = time.monotonic() + 30
        while not Path(port_file).exists() or not Path(port_file).read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("the ping pool did not start")
            time.sleep(0.05)
        port = int(Path(port_file).read_text())
        summary = f"{port_file}.summary.json"
        sgm = subprocess.run(
            [sys.executable, "-m", "sgm", "-o", f"stratum+tcp://127.0.0.1:{port}", "-u", "bench",
             "-p", "x", "-t", str(threads), "--devices", "cpu", "--time-limit", str(seconds),
             "-q", "--summary-json", summary],
            cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
        if sgm.returncode != 0:
            raise RuntimeError(f"sgm failed ({sgm.returncode}): {sgm.stderr[-2000:]}")
        mined = json.loads(Path(summary).read_text())
    finally:
        for p in spinners:
            p.kill()
        pool.send_signal(signal.SIGTERM)
        pool.wait(30)
    got = json.loads(Path(port_file + ".json").read_text())
    for f in (port_file, port_file + ".json", f"{port_file}.summary.json"):
        Path(f).unlink(missing_ok=True)
    rtts = [r * 1e3 for r in got["rtts"]]
    return {"pings": len(rtts), "p50_ms": percentile(rtts, 0.5), "p99_ms": percentile(rtts, 0.99),
            "max_ms": max(rtts) if rtts else float("nan"), "busy": busy, "threads": threads,
            "seconds": seconds, "pool_accepted": got["accepted"], "pool_rejected": got["rejected"],
            "sgm_hashrate": mined["hashrate"], "sgm_accepted": mined["accepted"],
            "sgm_stale": mined["stale"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--busy", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--share-bits", type=int, default=24)
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        serve(a.serve, a.share_bits)
        return
    r = run(a.seconds, a.busy, a.threads, a.share_bits)
    if a.json:
        print(json.dumps(r))
        return
    print(f"{r['pings']} pings beside {r['busy']} busy processes, {r['threads']} threads, "
          f"{r['seconds']:.0f} s: answer p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
          f"worst {r['max_ms']:.1f} ms")
    print(f"shares: pool accepted {r['pool_accepted']}, rejected {r['pool_rejected']}; "
          f"sgm {r['sgm_hashrate'] / 1e6:.1f} MH/s, stale {r['sgm_stale']}")


if __name__ == "__main__":
    main()
