"""`sgm pool` / `python -m sgm.pool`: the embedded pool alone, a Stratum server on loopback
for testing miners (sgm, cpuminer, a GPU or ASIC miner through a tunnel).

    sgm pool --listen 127.0.0.1:3333 [--difficulty BITS | --vardiff SHARES_PER_MIN]
             [--job-interval S] [--time-limit S] [--summary-json PATH]

It prints each connection as it comes and goes with its accepted / rejected shares, a
status line every few seconds, and the totals at the end; it runs until Ctrl-C / SIGTERM
or the time limit.  Exit status: 0 clean stop, 2 usage error, 1 other failure.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sgm.cli_args import UsageError, int_in, positive_float
from sgm.hashing import bits_to_difficulty
from sgm.pool.server import LOOPBACK_HOSTS, ConnectionInfo, LocalPool

__all__ = ["main", "cmd_pool", "DEFAULT_LISTEN"]

DEFAULT_LISTEN = "127.0.0.1:3333"
DEFAULT_BITS = 20
STATUS_INTERVAL = 10.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sgm pool",
        description="Run sgm's embedded Stratum v1 pool on its own (loopback only), for "
        "testing miners. Prints each connection with its accepted/rejected shares.")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="127.0.0.1:PORT",
                   help=f"address to listen on (default {DEFAULT_LISTEN}; port 0 picks a "
                   "free one)")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--difficulty", type=int_in(1, 255, "1 .. 255 leading zero bits"),
                   default=None, metavar="BITS",
                   help=f"fixed share target: leading zero bits (default {DEFAULT_BITS})")
    d.add_argument("--vardiff", type=positive_float, default=None, metavar="SHARES_PER_MIN",
                   help="adjust each connection's difficulty toward this many shares a "
                   f"minute (starting at {DEFAULT_BITS} bits)")
    p.add_argument("--job-interval", type=positive_float, default=30.0, metavar="S",
                   help="seconds between new jobs (default 30)")
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="S",
                   help="stop after this long (default: run until stopped)")
    p.add_argument("--summary-json", default=None, metavar="PATH",
                   help="write the final statistics as JSON here at exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the final totals")
    p.add_argument("--verbose", action="store_true", help="log every share")
    return p


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    if host not in LOOPBACK_HOSTS:
        raise UsageError(f"--listen {text}: the test pool only listens on 127.0.0.1 "
                         "(it accepts any worker: not for a network)")
    try:
        value = int(port)
    except ValueError:
        raise UsageError(f"--listen {text}: the port must be a number") from None
    if not 0 <= value <= 65535:
        raise UsageError(f"--listen {text}: port {value} is out of range 0..65535")
    return host, value


class _Out:
    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out, self.quiet = out, quiet

    def line(self, text: str, force: bool = False) -> None:
        if self.quiet and not force:
            return
        try:
            self.out.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):
            pass


def _conn_text(c: ConnectionInfo) -> str:
    workers = ",".join(c.workers) or "-"
    return (f"#{c.cid} {c.peer} ({workers}): accepted {c.accepted} rejected {c.rejected} "
            f"difficulty {c.difficulty:.6g}")


def summary(pool: LocalPool, started: float, finished: dict[int, ConnectionInfo],
            aim: float | None) -> dict[str, Any]:
    st = pool.stats
    elapsed = max(1e-9, time.monotonic() - started)
    live = {c.cid: c for c in pool.connections()}
    conns = sorted({**finished, **live}.values(), key=lambda c: c.cid)
    return {
        "url": pool.url, "elapsed_s": elapsed, "jobs_issued": st.jobs_issued,
        "difficulty": pool.difficulty, "vardiff_shares_per_min": aim,
        "accepted": st.accepted, "rejected": st.rejected_total,
        "rejected_reasons": dict(st.rejected), "stale": st.stale,
        "best_share_diff": st.best_share_difficulty, "blocks_found": st.blocks_found,
        "connections_total": st.connections_total,
        "workers": {name: {"accepted": w.accepted, "rejected": w.rejected,
                           "best_share_diff": w.best_difficulty}
                    for name, w in st.workers.items()},
        "connections": [{"id": c.cid, "peer": c.peer, "workers": list(c.workers),
                         "accepted": c.accepted, "rejected": c.rejected,
                         "difficulty": c.difficulty, "retargets": c.retargets,
                         "connected_s": c.connected_s, "open": c.cid in live}
                        for c in conns],
    }


async def _serve(args: argparse.Namespace, host: str, port: int, out: _Out) -> dict[str, Any]:
    bits = args.difficulty or DEFAULT_BITS
    pool = LocalPool(difficulty_bits=bits, jobs=None, job_interval=args.job_interval,
                     host=host, port=port, vardiff=args.vardiff,
                     # a replaced job's shares are still welcome for a moment (a timer tick,
                     # not a new block)
                     stale_grace=min(2.0, args.job_interval / 4))
    finished: dict[int, ConnectionInfo] = {}

    def gone(c: ConnectionInfo) -> None:
        finished[c.cid] = c
        out.line(f"connection closed {_conn_text(c)}")

    pool.on_connect.append(lambda c: out.line(f"connection #{c.cid} from {c.peer}"))
    pool.on_disconnect.append(gone)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reason = {"why": "stopped"}

    def on_signal(signum: int) -> None:
        reason["why"] = signal.Signals(signum).name
        stop.set()

    for s in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(s, on_signal, s)
    try:
        await pool.start()
    except OSError as exc:
        raise _StartError(f"--listen {host}:{port}: {exc.strerror or exc}") from None
    started = time.monotonic()
    diff_text = (f"vardiff {args.vardiff:g} shares/min per connection (start {bits} bits)"
                 if args.vardiff else f"difficulty {bits} bits ({bits_to_difficulty(bits):.6g})")
    out.line(f"sgm pool listening on {pool.url}  {diff_text}, a job every "
             f"{args.job_interval:g} s", force=True)
    try:
        while not stop.is_set():
            wait = STATUS_INTERVAL
            if args.time_limit is not None:
                left = started + args.time_limit - time.monotonic()
                if left <= 0:
                    reason["why"] = "time limit"
                    break
                wait = min(wait, left)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                break
            st = pool.stats
            conns = pool.connections()
            out.line(f"status: {len(conns)} connection(s), jobs {st.jobs_issued}, accepted "
                     f"{st.accepted} rejected {st.rejected_total}")
            for c in conns:
                out.line(f"  {_conn_text(c)}")
        out.line(f"stopping: {reason['why']}")
        result = summary(pool, started, finished, args.vardiff)
    finally:
        await pool.stop()
        for s in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(s)
    return result


class _StartError(Exception):
    pass


def cmd_pool(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    host, port = parse_listen(args.listen)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:    # every share: the server logs accepted ones at debug level
        logging.getLogger("sgm.pool.server").setLevel(logging.DEBUG)
    out = _Out(sys.stdout, args.quiet)
    try:
        result = asyncio.run(_serve(args, host, port, out))
    except _StartError as exc:
        print(f"sgm pool: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    out.line(f"total: {result['connections_total']} connection(s), accepted "
             f"{result['accepted']} rejected {result['rejected']} (stale {result['stale']}), "
             f"jobs {result['jobs_issued']}", force=True)
    for c in result["connections"]:
        out.line(f"  #{c['id']} {c['peer']} ({','.join(c['workers']) or '-'}): accepted "
                 f"{c['accepted']} rejected {c['rejected']} difficulty {c['difficulty']:.6g}",
                 force=True)
    if args.summary_json:
        try:
            Path(args.summary_json).write_text(json.dumps(result, indent=2) + "\n")
        except OSError as exc:
            print(f"sgm pool: error: cannot write --summary-json {args.summary_json}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return cmd_pool(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"sgm pool: error: {exc}\nusage: see 'sgm pool --help'", file=sys.stderr)
        return 2
