"""What one accepted share costs the embedded pool: its CPU time per mining.submit.

Starts a LocalPool on its own loop thread (PoolThread) with an easy share target, connects
one raw-socket Stratum client over 127.0.0.1 (subscribe, authorize, wait for the job),
finds N valid shares for that job with hashlib (the pool's own header code builds each
header, so every share is valid by construction), then sends them all and reads every
answer.  Reported, per run and as the median of the runs:

* pool CPU µs per accepted share: ``time.thread_time()`` of the pool's loop thread (read on
  that thread) over the blast, divided by the shares it accepted -- the client's own work
  (the sending and reading thread, the hashing before) is not in it;
* shares/s: accepted shares over the wall time from the first byte sent to the last answer.

Every answer must be ``result: true`` and the ledger must count exactly N accepted, or the
run fails.  ``--per-write K`` sends K submits per ``send()`` (1 = a line per write, as a
miner finding shares one by one does; 0 = the whole blast at once); ``--lockstep`` sends
each submit only once the one before was answered (every share a wake-up of its own: the
pool's cost per share when shares come slower than it answers them).

    python benchmarks/pool_submit.py [--shares 20000] [--runs 5] [--bits 4] [--per-write 0]
                                     [--lockstep]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import socket
import statistics
import threading
import time
from typing import Any

import _common  # noqa: F401  (path setup)

from sgm.hashing import bits_to_target
from sgm.pool.shares import share_header
from sgm.pool.thread import PoolThread


def _lines(sock: socket.socket, buf: bytearray) -> list[dict[str, Any]]:
    """Read until at least one whole line is buffered; return the parsed lines."""
    while b"\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the pool closed the connection")
        buf += data
    *whole, rest = bytes(buf).split(b"\n")
    buf[:] = rest
    return [json.loads(x) for x in whole if x.strip()]


def _hello(sock: socket.socket) -> tuple[bytes, int]:
    """Subscribe and authorize; returns (extranonce1, extranonce2 size) once work came."""
    sock.sendall(b'{"id":1,"method":"mining.subscribe","params":["bench"]}\n'
                 b'{"id":2,"method":"mining.authorize","params":["bench.w",""]}\n')
    buf = bytearray()
    en1: bytes | None = None
    en2_size = 0
    notified = False
    while en1 is None or not notified:
        for msg in _lines(sock, buf):
            if msg.get("id") == 1:
                en1, en2_size = bytes.fromhex(msg["result"][1]), msg["result"][2]
            elif msg.get("method") == "mining.notify":
                notified = True
    return en1, en2_size


def _find_shares(pt: PoolThread, en1: bytes, en2_size: int, n: int, bits: int,
                 en2_every: int) -> list[bytes]:
    """n valid submit lines (ids 100..), a new extranonce2 every ``en2_every`` shares."""
    job = pt.current_job()
    assert job is not None
    target = bits_to_target(bits)
    out: list[bytes] = []
    nonce = 0
    en2_n = 0
    while len(out) < n:
        en2 = (en2_n % (1 << (8 * en2_size))).to_bytes(en2_size, "big")
        found = 0
        while found < en2_every and len(out) < n:
            header = share_header(job, en1, en2, job.ntime, nonce, job.version)
            digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
            if int.from_bytes(digest, "little") <= target:
                out.append(json.dumps({"id": 100 + len(out), "method": "mining.submit",
                                       "params": ["bench.w", job.job_id, en2.hex(),
                                                  f"{job.ntime:08x}", f"{nonce:08x}"]},
                                      separators=(",", ":")).encode() + b"\n")
                found += 1
            nonce += 1
        en2_n += 1
        nonce = 0
    return out


def one_run(n: int, bits: int, per_write: int, en2_every: int, lockstep: bool = False) -> dict[str, float]:
    pt = PoolThread(difficulty_bits=bits, jobs=None, job_interval=3600.0)
    pt.start()
    try:
        with socket.create_connection(("127.0.0.1", pt.port)) as sock:
            en1, en2_size = _hello(sock)
            lines = _find_shares(pt, en1, en2_size, n, bits, en2_every)
            chunks = ([b"".join(lines)] if per_write <= 0 else
                      [b"".join(lines[i:i + per_write]) for i in range(0, n, per_write)])

            async def cpu() -> float:
                return time.thread_time()
            cpu0 = pt._call(cpu())
            t0 = time.perf_counter()
            if lockstep:
                chunks = []
                buf = bytearray()
                for line in lines:
                    sock.sendall(line)
                    while not [m for m in _lines(sock, buf) if m.get("method") is None]:
                        pass
            sender = threading.Thread(target=lambda: [sock.sendall(c) for c in chunks], daemon=True)
            sender.start()
            buf = bytearray()
            answered = 0
            bad = 0
            if lockstep:
                answered = n    # checked by the ledger below
            while answered < n:
                for msg in _lines(sock, buf):
                    if msg.get("method") is not None:
                        continue  # a notification
                    answered += 1
                    if msg.get("result") is not True:
                        bad += 1
            wall = time.perf_counter() - t0
            cpu1 = pt._call(cpu())
            sender.join()
        stats = pt.stats
    finally:
        pt.stop()
    if bad or stats.accepted != n:
        raise RuntimeError(f"{bad} answers not true, ledger accepted {stats.accepted} of {n}: "
                           f"{stats.rejected}")
    return {"pool_cpu_us_per_share": (cpu1 - cpu0) / n * 1e6, "shares_per_s": n / wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shares", type=int, default=20000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--bits", type=int, default=4, help="share target: leading zero bits")
    p.add_argument("--per-write", type=int, default=0, help="submits per send() (0: all at once)")
    p.add_argument("--en2-every", type=int, default=1000, help="shares per extranonce2")
    p.add_argument("--lockstep", action="store_true", help="send a submit once the last is answered")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    runs = [one_run(a.shares, a.bits, a.per_write, a.en2_every, a.lockstep) for _ in range(a.runs)]
    cpu = [r["pool_cpu_us_per_share"] for r in runs]
    rate = [r["shares_per_s"] for r in runs]
    result = {"cpu": platform.processor() or platform.machine(), "shares": a.shares,
              "per_write": a.per_write, "lockstep": a.lockstep, "runs": runs,
              "median_pool_cpu_us_per_share": statistics.median(cpu),
              "median_shares_per_s": statistics.median(rate)}
    if a.json:
        print(json.dumps(result, indent=2))
        return
    for r in runs:
        print(f"  pool {r['pool_cpu_us_per_share']:6.1f} µs CPU/share, {r['shares_per_s']:8.0f} shares/s")
    print(f"median: pool {result['median_pool_cpu_us_per_share']:.1f} µs CPU per accepted share, "
          f"{result['median_shares_per_s']:.0f} shares/s ({a.shares} shares x {a.runs} runs, "
          f"per-write {a.per_write}{', lockstep' if a.lockstep else ''})")


if __name__ == "__main__":
    main()
