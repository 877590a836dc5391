"""`sgm farm HOST:PORT ...`: watch several miners through their cgminer APIs.

Any miner that speaks cgminer's API is a rig here (sgm with ``--api-listen``, cgminer,
bfgminer, most ASIC firmwares).  Each poll asks every rig, all at once, for ``summary``,
``pools`` and ``version`` with a per-rig timeout, so an unreachable or malformed rig is
reported as such (with the reason) and never holds up the others.

:func:`poll_rigs` is the library entry (the desktop app's Rigs tab can use it too);
:func:`cmd_farm` is the command line: a table every ``--interval`` seconds, or JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sgm.cli_args import UsageError, positive_float

__all__ = ["Rig", "RigStatus", "parse_rig", "poll_rig", "poll_rigs", "farm_total", "cmd_farm"]

DEFAULT_PORT = 4028
#: a reply longer than this is malformed (a real summary is a few KiB)
MAX_REPLY = 1 << 20


@dataclass(frozen=True)
class Rig:
    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class RigStatus:
    """One rig at one poll: ``state`` is "ok", "unreachable" or "malformed" (``error``
    says why); the figures are those of the last good poll (``last_seen``, a UNIX time,
    None when it never answered)."""

    rig: str
    state: str = "unreachable"
    error: str = ""
    version: str = ""
    mhs_5s: float = 0.0
    mhs_av: float = 0.0
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    hw_errors: int = 0
    elapsed_s: int = 0
    pools: list[dict[str, Any]] = field(default_factory=list)
    last_seen: float | None = None

    @property
    def active_pool(self) -> str:
        for p in self.pools:
            if p.get("active"):
                return str(p.get("url", ""))
        return ""


def parse_rig(text: str) -> Rig:
    """HOST[:PORT] (port 4028 when left out); ValueError names the problem."""
    text = text.strip()
    if not text:
        raise ValueError("empty rig address")
    host, sep, port = text.rpartition(":")
    if not sep:
        return Rig(text)
    if not host:
        raise ValueError(f"{text!r}: no host")
    try:
        value = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"{text!r}: port {value} is out of range 1..65535")
    return Rig(host.strip("[]"), value)


class _Malformed(Exception):
    pass


async def _ask(rig: Rig, command: str, timeout: float) -> dict[str, Any]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(rig.host, rig.port), timeout)
    try:
        writer.write(json.dumps({"command": command}).encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(MAX_REPLY + 1), timeout)
        # cgminer sends the reply and closes; read the rest of a reply split in chunks
        while data and not data.endswith(b"\x00") and len(data) <= MAX_REPLY:
            more = await asyncio.wait_for(reader.read(MAX_REPLY + 1), timeout)
            if not more:
                break
            data += more
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    if len(data) > MAX_REPLY:
        raise _Malformed(f"{command}: reply over {MAX_REPLY} bytes")
    if not data:
        raise _Malformed(f"{command}: no reply (closed)")
    try:
        reply = json.loads(data.rstrip(b"\x00").decode("utf-8", errors="replace"))
    except ValueError:
        raise _Malformed(f"{command}: the reply is not JSON") from None
    if not isinstance(reply, dict):
        raise _Malformed(f"{command}: the reply is not a JSON object")
    status = reply.get("STATUS")
    if not isinstance(status, list) or not status or not isinstance(status[0], dict):
        raise _Malformed(f"{command}: no STATUS in the reply")
    if status[0].get("STATUS") not in ("S", "I"):
        raise _Malformed(f"{command}: {status[0].get('Msg', 'error status')}")
    return reply


def _num(row: dict[str, Any], key: str, kind: type = float) -> Any:
    value = row.get(key, 0)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise _Malformed(f"field {key!r} is not a number: {value!r}") from None


async def poll_rig(rig: Rig, timeout: float = 3.0, previous: RigStatus | None = None) -> RigStatus:
    """Ask one rig; never raises (a failure is in the returned status)."""
    out = RigStatus(str(rig))
    if previous is not None:    # keep the last good figures to show beside the error
        out = RigStatus(**{**asdict(previous), "rig": str(rig)})
    try:
        summary, pools, version = await asyncio.gather(
            _ask(rig, "summary", timeout), _ask(rig, "pools", timeout),
            _ask(rig, "version", timeout))
        rows = summary.get("SUMMARY")
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
            raise _Malformed("summary: no SUMMARY section")
        s = rows[0]
        out.mhs_5s = _num(s, "MHS 5s") if "MHS 5s" in s else _num(s, "MHS av")
        out.mhs_av = _num(s, "MHS av")
        out.accepted, out.rejected = _num(s, "Accepted", int), _num(s, "Rejected", int)
        out.stale = _num(s, "Stale", int)
        out.hw_errors = _num(s, "Hardware Errors", int)
        out.elapsed_s = _num(s, "Elapsed", int)
        prow = pools.get("POOLS", [])
        if not isinstance(prow, list):
            raise _Malformed("pools: POOLS is not a list")
        out.pools = [{"url": str(p.get("URL", "")), "user": str(p.get("User", "")),
                      "status": str(p.get("Status", "")),
                      "active": bool(p.get("Stratum Active", False))}
                     for p in prow if isinstance(p, dict)]
        vrow = (version.get("VERSION") or [{}])[0]
        if isinstance(vrow, dict):
            name = vrow.get("Miner") or next(
                (f"{k.lower()} {v}" for k, v in vrow.items() if k in ("CGMiner", "BMMiner",
                                                                      "BFGMiner", "SGM")), "")
            out.version = str(name)
        out.state, out.error, out.last_seen = "ok", "", time.time()
    except _Malformed as exc:
        out.state, out.error = "malformed", str(exc)
    except TimeoutError:
        out.state, out.error = "unreachable", f"no answer within {timeout:g} s"
    except (OSError, ConnectionError) as exc:
        # asyncio's own text ("Connect call failed (...)") hides the reason the errno gives
        reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        out.state, out.error = "unreachable", reason
    except Exception as exc:  # noqa: BLE001 - one odd rig must not break the view
        out.state, out.error = "malformed", f"{type(exc).__name__}: {exc}"
    return out


async def poll_rigs(rigs: Sequence[Rig], timeout: float = 3.0,
                    previous: dict[str, RigStatus] | None = None) -> list[RigStatus]:
    """Every rig at once, in the given order."""
    prev = previous or {}
    return list(await asyncio.gather(*(poll_rig(r, timeout, prev.get(str(r))) for r in rigs)))


def farm_total(statuses: Sequence[RigStatus]) -> dict[str, Any]:
    """The farm's figures: sums over the rigs that answered this time."""
    ok = [s for s in statuses if s.state == "ok"]
    return {"rigs": len(statuses), "rigs_ok": len(ok),
            "mhs_5s": sum(s.mhs_5s for s in ok), "mhs_av": sum(s.mhs_av for s in ok),
            "accepted": sum(s.accepted for s in ok), "rejected": sum(s.rejected for s in ok),
            "stale": sum(s.stale for s in ok), "hw_errors": sum(s.hw_errors for s in ok)}


# --------------------------------------------------------------------------- command line
def _fmt_mhs(mhs: float) -> str:
    h = mhs * 1e6
    for unit, scale in (("TH/s", 1e12), ("GH/s", 1e9), ("MH/s", 1e6), ("kH/s", 1e3)):
        if h >= scale:
            return f"{h / scale:.2f} {unit}"
    return f"{h:.0f} H/s"


def format_table(statuses: Sequence[RigStatus], now: float | None = None) -> str:
    now = time.time() if now is None else now
    head = (f"{'rig':22s} {'state':11s} {'version':14s} {'5s':>11s} {'avg':>11s} "
            f"{'acc':>7s} {'rej':>5s} {'stale':>5s} {'hw':>4s} {'seen':>6s}  pool")
    lines = [head]
    for s in statuses:
        seen = f"{now - s.last_seen:.0f}s" if s.last_seen is not None else "never"
        lines.append(f"{s.rig:22s} {s.state:11s} {s.version[:14]:14s} {_fmt_mhs(s.mhs_5s):>11s} "
                     f"{_fmt_mhs(s.mhs_av):>11s} {s.accepted:7d} {s.rejected:5d} {s.stale:5d} "
                     f"{s.hw_errors:4d} {seen:>6s}  {s.active_pool or '-'}")
        if s.error:
            lines.append(f"{'':22s} ^ {s.error}")
    t = farm_total(statuses)
    lines.append(f"{'total':22s} {t['rigs_ok']}/{t['rigs']} ok{'':7s}{'':14s} "
                 f"{_fmt_mhs(t['mhs_5s']):>11s} {_fmt_mhs(t['mhs_av']):>11s} {t['accepted']:7d} "
                 f"{t['rejected']:5d} {t['stale']:5d} {t['hw_errors']:4d}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sgm farm",
        description="Watch several miners through their cgminer APIs (sgm --api-listen, "
        "cgminer, ...): per rig its version, hash rate, shares, hardware errors, pool and "
        "when it last answered, and the farm's total.")
    p.add_argument("rigs", nargs="*", metavar="HOST:PORT",
                   help=f"the rigs (port {DEFAULT_PORT} when left out)")
    p.add_argument("-c", "--config", metavar="FILE",
                   help='also the rigs of this config file ("rigs": ["HOST:PORT", ...])')
    p.add_argument("--interval", type=positive_float, default=5.0, metavar="S",
                   help="seconds between polls (default 5)")
    p.add_argument("--timeout", type=positive_float, default=3.0, metavar="S",
                   help="seconds one rig may take to answer (default 3)")
    p.add_argument("--once", action="store_true", help="poll once, print, exit")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per poll instead of the table")
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="S",
                   help="stop after this long")
    return p


def _config_rigs(path: str) -> list[str]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"config file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"config file {path}: invalid JSON: {exc}") from None
    rigs = data.get("rigs", []) if isinstance(data, dict) else None
    if not isinstance(rigs, list) or not all(isinstance(r, str) for r in rigs):
        raise UsageError(f"config file {path}: rigs must be a list of \"HOST:PORT\" strings")
    return rigs


def cmd_farm(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    texts = list(args.rigs) + (_config_rigs(args.config) if args.config else [])
    if not texts:
        raise UsageError("name at least one rig: sgm farm HOST:PORT ... (or -c FILE with rigs)")
    rigs: list[Rig] = []
    for t in texts:
        try:
            rig = parse_rig(t)
        except ValueError as exc:
            raise UsageError(f"rig {exc}") from None
        if rig not in rigs:
            rigs.append(rig)
    return asyncio.run(_watch(rigs, args))


async def _watch(rigs: list[Rig], args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(s, stop.set)
    started = time.monotonic()
    last: dict[str, RigStatus] = {}
    try:
        while True:
            statuses = await poll_rigs(rigs, args.timeout, last)
            last = {s.rig: s for s in statuses}
            now = time.time()
            if args.json:
                print(json.dumps({"time": now, "rigs": [asdict(s) for s in statuses],
                                  "total": farm_total(statuses)}), flush=True)
            else:
                print(f"[{time.strftime('%H:%M:%S')}]\n{format_table(statuses, now)}\n",
                      flush=True)
            if args.once:
                return 0
            wait = args.interval
            if args.time_limit is not None:
                left = started + args.time_limit - time.monotonic()
                if left <= 0:
                    return 0
                wait = min(wait, left)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return 0
    except BrokenPipeError:
        return 0
    finally:
        for s in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(s)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return cmd_farm(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"sgm farm: error: {exc}", file=sys.stderr)
        return 2
