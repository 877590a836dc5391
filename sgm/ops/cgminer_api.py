"""A cgminer-compatible monitoring API (``--api-listen``, TCP port 4028 by default).

Requests are cgminer's two forms: JSON ``{"command": "summary", "parameter": ""}`` gets a
JSON reply, plain ``summary|PARAM`` a plain one (``STATUS=S,...|SUMMARY,Elapsed=5,...|``);
both end with a NUL byte as cgminer's do.  Read commands may be joined with ``+``
(``summary+devs``): the reply then holds one cgminer reply per command under its name.

Access follows cgminer's ``--api-allow`` syntax: a comma-separated list of
``[W:]IP[/PREFIX]`` (missing trailing octets count as 0: ``192.168.0/24``); a client
outside every entry is disconnected unanswered, ``W:`` entries may also run the
privileged commands.  Without ``--api-allow`` only 127.0.0.1 may connect, read-only.
The server binds 127.0.0.1 unless an entry names a network beyond 127.0.0.0/8.

The server runs on an asyncio loop of its own thread; it reads the engine through the
Miner facade (``summary()``, ``pool_status()``, ``devices``, ``network_difficulty()``)
and a telemetry subscription (the share difficulties cgminer reports), and changes it
through the facade's public methods.  No reply ever holds a pool password.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgm import __version__
from sgm.ops.odds import expected_block_seconds
from sgm.telemetry import JobEvent, ShareEvent

if TYPE_CHECKING:
    from sgm.miner import Miner

__all__ = ["AllowRule", "parse_allow", "bind_host", "CgminerApi", "DEFAULT_PORT",
           "handle_request"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 4028
API_VERSION = "3.7"            # the cgminer API version whose shapes these replies follow
#: a request longer than this is refused (cgminer reads at most 8 KiB)
MAX_REQUEST = 65536
#: seconds a client may take to send its request (a half-open connection is closed then)
REQUEST_TIMEOUT = 10.0
#: connections served at once; more are closed unanswered
MAX_CLIENTS = 256

# cgminer's message codes (api.c), for the replies sgm gives
MSG_POOL, MSG_NOPOOL, MSG_DEVS, MSG_SUMM, MSG_INVCMD, MSG_MISID = 7, 8, 9, 11, 14, 15
MSG_VERSION, MSG_INVJSON, MSG_MISCMD, MSG_MISPID, MSG_INVPID, MSG_SWITCHP = 22, 23, 24, 25, 26, 27
MSG_MINECONFIG, MSG_SAVED, MSG_ACCDENY, MSG_ENAPOOL, MSG_DISPOOL = 33, 44, 45, 47, 48
MSG_ALRENAP, MSG_ALRDISP, MSG_DISLASTP, MSG_MISPDP, MSG_INVPDP = 49, 50, 51, 52, 53
MSG_ADDPOOL, MSG_REMLASTP, MSG_ACTPOOL, MSG_REMPOOL, MSG_DEVDETAILS = 55, 66, 67, 68, 69
MSG_MINESTATS, MSG_POOLPRIO, MSG_DUPPID, MSG_MINECOIN, MSG_ZERINV, MSG_ZERSUM = \
    70, 73, 74, 78, 95, 96
MSG_ZERNOSUM, MSG_INVDEV, MSG_DEVENA, MSG_DEVDIS, MSG_ALRENADEV, MSG_ALRDISDEV = \
    97, 107, 110, 111, 108, 109
MSG_BYE, MSG_SAVEFAIL, MSG_NOSAVE, MSG_TOOBIG = 0, 46, 43, 23


# --------------------------------------------------------------------------- access
@dataclass(frozen=True)
class AllowRule:
    network: ipaddress.IPv4Network
    privileged: bool


def _network(text: str) -> ipaddress.IPv4Network:
    """cgminer's IP[/PREFIX], where ``192.168.0/24`` means 192.168.0.0/24."""
    addr, _, prefix = text.partition("/")
    octets = addr.split(".")
    if not 1 <= len(octets) <= 4 or not all(o.isdigit() for o in octets):
        raise ValueError(f"{text!r} is not an IPv4 address or network")
    octets += ["0"] * (4 - len(octets))
    if not prefix:
        prefix = "32"
    try:
        return ipaddress.IPv4Network(f"{'.'.join(octets)}/{prefix}", strict=False)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def parse_allow(text: str | None) -> list[AllowRule]:
    """The rules of an ``--api-allow`` value (None: 127.0.0.1, read-only).  ValueError
    names the bad entry."""
    if text is None:
        return [AllowRule(ipaddress.IPv4Network("127.0.0.1/32"), False)]
    rules: list[AllowRule] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        privileged = False
        if entry[:2].upper() in ("W:", "R:"):
            privileged = entry[0].upper() == "W"
            entry = entry[2:].strip()
        rules.append(AllowRule(_network(entry), privileged))
    if not rules:
        raise ValueError("--api-allow names no address")
    return rules


LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def bind_host(rules: list[AllowRule]) -> str:
    """127.0.0.1 unless a rule names a network beyond loopback (then every interface)."""
    return "127.0.0.1" if all(r.network.subnet_of(LOOPBACK) for r in rules) else "0.0.0.0"


def access(rules: list[AllowRule], peer: str) -> str | None:
    """"W" (privileged), "R" (read) or None (refused) for a client address."""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not isinstance(ip, ipaddress.IPv4Address):
        return None
    level: str | None = None
    for rule in rules:
        if ip in rule.network:
            if rule.privileged:
                return "W"
            level = "R"
    return level


# --------------------------------------------------------------------------- replies
class ApiError(Exception):
    """A command refused: cgminer's error status with ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass
class Reply:
    """One command's answer: a status and its sections (name -> rows)."""

    code: int
    msg: str
    severity: str = "S"
    sections: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        return {"STATUS": self.severity, "When": int(time.time()), "Code": self.code,
                "Msg": self.msg, "Description": f"sgm {__version__}"}

    def to_json(self, ident: int = 1) -> dict[str, Any]:
        out: dict[str, Any] = {"STATUS": [self.status()]}
        for name, rows in self.sections:
            out[name] = rows
        out["id"] = ident
        return out

    def to_plain(self) -> str:
        parts = [_plain_row(self.status())]
        for name, rows in self.sections:
            for row in rows:
                first = next(iter(row), None)
                # a row led by its index (ASC=0, POOL=1) stands alone; others get the name
                indexed = first is not None and first.isupper() and isinstance(row[first], int)
                parts.append(_plain_row(row) if indexed else f"{name},{_plain_row(row)}")
        return "|".join(parts) + "|"


def _plain_value(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.6g}" if abs(value) >= 1e15 else f"{value:.4f}".rstrip("0").rstrip(".")
    else:
        text = str(value)
    # cgminer's plain form escapes its separators with a backslash
    for ch in ("\\", ",", "|", "="):
        text = text.replace(ch, "\\" + ch)
    return text


def _plain_row(row: dict[str, Any]) -> str:
    return ",".join(f"{k}={_plain_value(v)}" for k, v in row.items())


def _error(code: int, msg: str) -> Reply:
    return Reply(code, msg, "E")


def _split_escaped(text: str) -> list[str]:
    """cgminer's parameter list: commas separate, a backslash escapes the next char."""
    out, cur, esc = [], [], False
    for ch in text:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


# --------------------------------------------------------------------------- the API
READ_COMMANDS = ("version", "config", "summary", "devs", "pools", "stats", "devdetails", "coin")
PRIVILEGED_COMMANDS = ("switchpool", "enablepool", "disablepool", "addpool", "removepool",
                       "poolpriority", "ascenable", "ascdisable", "pgaenable", "pgadisable",
                       "cpuenable", "cpudisable", "gpuenable", "gpudisable", "save", "quit",
                       "restart", "zero")


@dataclass
class _Counters:
    """What cgminer reports that telemetry does not sum: share difficulties, last shares."""

    diff_accepted: float = 0.0
    diff_rejected: float = 0.0
    diff_stale: float = 0.0
    last_share_time: int = 0
    last_share_diff: float = 0.0
    last_valid_work: int = 0
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    best_since_zero: float = 0.0


class CgminerApi:
    """The API server of one Miner.

    ``on_quit`` / ``on_restart`` are called (on the API thread) after the reply to
    ``quit`` / ``restart`` is sent; ``config_path`` is where ``save`` writes without a
    parameter.  ``start()`` binds (OSError when the port is taken) and returns; ``stop()``
    closes every connection and ends the thread.
    """

    def __init__(self, miner: Miner, *, port: int = DEFAULT_PORT, allow: str | None = None,
                 host: str | None = None, on_quit: Callable[[], Any] | None = None,
                 on_restart: Callable[[], Any] | None = None, config_path: str | None = None,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.miner = miner
        self.rules = parse_allow(allow)
        self.host = host or bind_host(self.rules)
        self.port = port
        self.on_quit = on_quit
        self.on_restart = on_restart
        self.config_path = config_path
        self.request_timeout = request_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._clients = 0
        self._lock = threading.Lock()
        self._total = _Counters()
        self._devices: dict[str, _Counters] = {}
        self._pools: dict[str, _Counters] = {}
        self._jobs = 0
        self._zero: dict[str, Any] | None = None   # the summary at the last `zero`
        self._sub = miner.telemetry.subscribe(self._on_event, maxsize=100_000,
                                              kinds=(ShareEvent, JobEvent))
        #: requests answered (all forms), for tests and the log
        self.served = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> CgminerApi:
        self._thread = threading.Thread(target=self._run, name="sgm-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the API server did not start in time")
        if self._error is not None:
            self._sub.close(0)
            raise self._error
        log.info("cgminer API on %s:%d", self.host, self.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._sub.close(1.0)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    # ------------------------------------------------------------------ telemetry
    def _on_event(self, ev: Any) -> None:
        if isinstance(ev, JobEvent):
            self._jobs += 1
            return
        if not isinstance(ev, ShareEvent):
            return
        pool = self._active_pool_url()
        with self._lock:
            counters = [self._total, self._devices.setdefault(ev.device, _Counters())]
            if pool is not None:
                counters.append(self._pools.setdefault(pool, _Counters()))
            now = int(ev.ts)
            for c in counters:
                if ev.accepted is None:
                    c.best_since_zero = max(c.best_since_zero, ev.difficulty)
                    continue
                if ev.accepted:
                    c.diff_accepted += ev.difficulty
                    c.accepted += 1
                    c.last_valid_work = now
                elif ev.reason == "stale":
                    c.diff_stale += ev.difficulty
                    c.stale += 1
                else:
                    c.diff_rejected += ev.difficulty
                    c.rejected += 1
                c.last_share_time = now
                c.last_share_diff = ev.difficulty

    def _active_pool_url(self) -> str | None:
        for row in self.miner.pool_status():
            if row["active"]:
                return str(row["url"])
        return None

    # ------------------------------------------------------------------ connections
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        level = access(self.rules, peer[0]) if peer else None
        try:
            if level is None:
                log.info("API: connection from %s refused (not in --api-allow)", peer)
                return
            if self._clients >= MAX_CLIENTS:
                log.warning("API: %d clients at once; closing %s", MAX_CLIENTS, peer)
                return
            self._clients += 1
            try:
                data = await self._read_request(reader)
                if data is None:
                    return
                loop = asyncio.get_running_loop()
                text, after = await loop.run_in_executor(
                    None, self.handle_request, data, level == "W")
                writer.write(text.encode("utf-8") + b"\x00")
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
                self.served += 1
                if after is not None:
                    after()
            finally:
                self._clients -= 1
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - one client must never take the server down
            log.exception("API: error serving %s", peer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The request bytes: a plain one is what the first read brings (as cgminer
        reads it); a JSON one is read until it parses, ends with a newline or NUL, or
        passes MAX_REQUEST (then a too-long marker).  None: the client sent nothing in time."""
        deadline = time.monotonic() + self.request_timeout
        data = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None if not data else data
            try:
                chunk = await asyncio.wait_for(reader.read(MAX_REQUEST + 1), left)
            except TimeoutError:
                return None if not data else data
            if not chunk:
                return data or None
            data += chunk
            if len(data) > MAX_REQUEST:
                return b"\x00TOOBIG"
            stripped = data.lstrip()
            if not stripped.startswith(b"{") or stripped.rstrip().endswith((b"\n", b"\x00")):
                return data
            with contextlib.suppress(ValueError):
                json.loads(stripped.rstrip(b"\x00"))
                return data

    # ------------------------------------------------------------------ requests
    def handle_request(self, data: bytes, privileged: bool) -> tuple[str, Callable[[], Any] | None]:
        """The reply text to one request and what to do once it is sent (quit, restart)."""
        if data == b"\x00TOOBIG":
            reply = _error(MSG_TOOBIG, f"Request too long (at most {MAX_REQUEST} bytes)")
            return json.dumps(reply.to_json()), None
        text = data.decode("utf-8", errors="replace").strip().strip("\x00").strip()
        is_json = text.startswith("{")
        if is_json:
            try:
                req = json.loads(text)
            except ValueError:
                return json.dumps(_error(MSG_INVJSON, "Invalid JSON").to_json()), None
            if not isinstance(req, dict) or not isinstance(req.get("command"), str):
                return json.dumps(_error(MSG_MISCMD, "Missing JSON 'command'").to_json()), None
            command = req["command"].strip()
            param = req.get("parameter", "")
            param = "" if param is None else str(param) if not isinstance(param, str) else param
        else:
            command, _, param = text.partition("|")
            command = command.strip()
        after: list[Callable[[], Any]] = []
        commands = command.split("+")
        if len(commands) > 1:
            replies = {}
            for name in dict.fromkeys(commands):   # a repeat is answered once, as cgminer does
                if name in READ_COMMANDS:
                    replies[name] = self._command(name, param, privileged, after)
                else:
                    replies[name] = _error(MSG_ACCDENY if name in PRIVILEGED_COMMANDS
                                           else MSG_INVCMD,
                                           f"Join not allowed for '{name[:64]}'"
                                           if name in PRIVILEGED_COMMANDS else "Invalid command")
            if is_json:
                out: dict[str, Any] = {name: [r.to_json()] for name, r in replies.items()}
                out["id"] = 1
                return json.dumps(out), None
            return "".join(r.to_plain() for r in replies.values()), None
        reply = self._command(command, param, privileged, after)
        callback = after[0] if after else None
        return (json.dumps(reply.to_json()) if is_json else reply.to_plain()), callback

    def _command(self, name: str, param: str, privileged: bool,
                 after: list[Callable[[], Any]]) -> Reply:
        if name in READ_COMMANDS:
            reply: Reply = getattr(self, f"cmd_{name}")(param)
            return reply
        if name in PRIVILEGED_COMMANDS:
            if not privileged:
                return _error(MSG_ACCDENY, f"Access denied to '{name}' command")
            try:
                return self._privileged(name, param, after)
            except ApiError as exc:
                return _error(exc.code, exc.msg)
        return _error(MSG_INVCMD, "Invalid command")

    # ------------------------------------------------------------------ read commands
    def _summary(self) -> dict[str, Any]:
        s = self.miner.summary()
        z = self._zero
        if z is not None:   # `zero`: counters since then (rates are averages: kept)
            for key in ("hashes", "accepted", "rejected", "stale", "hw_errors"):
                s[key] -= z[key]
            s["elapsed_s"] = max(1e-9, s["elapsed_s"] - z["elapsed_s"])
            s["hashrate"] = s["hashes"] / s["elapsed_s"]
        return s

    def cmd_version(self, param: str) -> Reply:
        return Reply(MSG_VERSION, "sgm versions", sections=[("VERSION", [{
            "SGM": __version__, "API": API_VERSION, "Miner": f"sgm {__version__}",
            "Type": "sgm"}])])

    def cmd_config(self, param: str) -> Reply:
        devices = list(self.miner.devices)
        cfg = self.miner.config
        return Reply(MSG_MINECONFIG, "sgm config", sections=[("CONFIG", [{
            "ASC Count": len(devices), "PGA Count": 0,
            "CPU Count": sum(d.kind == "cpu" for d in devices),
            "GPU Count": sum(d.kind != "cpu" for d in devices),
            "Pool Count": max(1, len(cfg.pools)) if cfg.solo is None else 1,
            "Strategy": "Failover", "Log Interval": 5, "Device Code": "CPU OCL",
            "OS": "Linux", "Hotplug": "None", "Solo": cfg.solo is not None,
            "Batch Time": cfg.batch_time}])])

    def cmd_summary(self, param: str) -> Reply:
        s = self._summary()
        rates = s["rates"]
        with self._lock:
            t = _Counters(**vars(self._total))
        elapsed = s["elapsed_s"]
        found = s["accepted"] + s["rejected"] + s["stale"]
        best = t.best_since_zero if self._zero is not None else s["best_share_diff"]
        netdiff = self.miner.network_difficulty()
        row = {
            "Elapsed": int(elapsed),
            "MHS av": s["hashrate"] / 1e6, "MHS 5s": rates.get("5s", 0.0) / 1e6,
            "MHS 1m": rates.get("1m", 0.0) / 1e6, "MHS 5m": rates.get("5m", 0.0) / 1e6,
            "MHS 15m": rates.get("15m", 0.0) / 1e6,
            "Found Blocks": s["blocks_found"], "Getworks": self._jobs,
            "Accepted": s["accepted"], "Rejected": s["rejected"],
            "Hardware Errors": s["hw_errors"],
            "Utility": s["accepted"] / elapsed * 60,
            "Discarded": 0, "Stale": s["stale"], "Get Failures": 0, "Local Work": 0,
            "Remote Failures": 0, "Network Blocks": 0, "Total MH": s["hashes"] / 1e6,
            "Work Utility": t.diff_accepted / elapsed * 60,
            "Difficulty Accepted": t.diff_accepted, "Difficulty Rejected": t.diff_rejected,
            "Difficulty Stale": t.diff_stale, "Best Share": int(best),
            "Device Hardware%": _pct(s["hw_errors"], s["hw_errors"] + found),
            "Device Rejected%": _pct(s["rejected"], found),
            "Pool Rejected%": _pct(t.diff_rejected, t.diff_accepted + t.diff_rejected
                                   + t.diff_stale),
            "Pool Stale%": _pct(t.diff_stale, t.diff_accepted + t.diff_rejected + t.diff_stale),
            "Last getwork": int(time.time()),
            "Network Difficulty": netdiff or 0.0,
            "Expected Block Seconds": expected_block_seconds(netdiff, rates.get("5m", 0.0)
                                                             or s["hashrate"]) or 0.0,
        }
        return Reply(MSG_SUMM, "Summary", sections=[("SUMMARY", [row])])

    def cmd_devs(self, param: str) -> Reply:
        s = self._summary()
        rows = []
        kind_index: dict[str, int] = {}
        for i, d in enumerate(s["devices"]):
            kind = "cpu" if d["kind"] == "cpu" else "gpu"
            k = kind_index.get(kind, 0)
            kind_index[kind] = k + 1
            with self._lock:
                c = _Counters(**vars(self._devices.get(d["name"], _Counters())))
            rates = d.get("rates", {})
            elapsed = s["elapsed_s"]
            found = d["accepted"] + d["rejected"] + d["stale"]
            rows.append({
                "ASC": i, "Name": "CPU" if kind == "cpu" else "OCL", "ID": k,
                "Device": d["name"], "Enabled": "Y" if d["enabled"] else "N",
                "Status": "Alive", "Temperature": 0.0,
                "MHS av": d["hashrate"] / 1e6, "MHS 5s": rates.get("5s", 0.0) / 1e6,
                "MHS 1m": rates.get("1m", 0.0) / 1e6, "MHS 5m": rates.get("5m", 0.0) / 1e6,
                "MHS 15m": rates.get("15m", 0.0) / 1e6,
                "Accepted": d["accepted"], "Rejected": d["rejected"],
                "Hardware Errors": d["hw_errors"], "Utility": d["accepted"] / elapsed * 60,
                "Last Share Pool": -1, "Last Share Time": c.last_share_time,
                "Total MH": d["hashes"] / 1e6, "Diff1 Work": c.diff_accepted,
                "Difficulty Accepted": c.diff_accepted, "Difficulty Rejected": c.diff_rejected,
                "Last Share Difficulty": c.last_share_diff, "No Device": False,
                "Last Valid Work": c.last_valid_work,
                "Device Hardware%": _pct(d["hw_errors"], d["hw_errors"] + found),
                "Device Rejected%": _pct(d["rejected"], found),
                "Device Elapsed": int(elapsed),
                "Kind": d["kind"], "Impl": d["impl"], "Batch Size": d["batch_size"],
                "Latency ms": d["latency_ms"], "Utilisation": d["utilisation"],
            })
        msg = f"{len(rows)} ASC(s)"
        return Reply(MSG_DEVS, msg, sections=[("DEVS", rows)])

    def cmd_pools(self, param: str) -> Reply:
        status = self.miner.pool_status()
        if not status:   # solo mining: the node is the one "pool"
            solo = self.miner.config.solo
            if solo is None:
                return Reply(MSG_NOPOOL, "No pools", "W", [("POOLS", [])])
            status = [{"url": solo.endpoint(), "user": "", "state": "connected",
                       "active": True, "difficulty": None}]
        rows = []
        for i, p in enumerate(status):
            with self._lock:
                c = _Counters(**vars(self._pools.get(str(p["url"]), _Counters())))
            state = p["state"]
            rows.append({
                "POOL": i, "URL": _no_credentials(str(p["url"])),
                "Status": {"connected": "Alive", "local": "Alive", "disabled": "Disabled"}
                .get(state, "Dead"),
                "Priority": i, "Quota": 1, "Long Poll": "N", "Getworks": 0,
                "Accepted": c.accepted, "Rejected": c.rejected, "Works": 0, "Discarded": 0,
                "Stale": c.stale, "Get Failures": 0, "Remote Failures": 0,
                "User": p.get("user", ""), "Last Share Time": c.last_share_time,
                "Diff1 Shares": c.diff_accepted, "Proxy Type": "", "Proxy": "",
                "Difficulty Accepted": c.diff_accepted, "Difficulty Rejected": c.diff_rejected,
                "Difficulty Stale": c.diff_stale, "Last Share Difficulty": c.last_share_diff,
                "Work Difficulty": p.get("difficulty") or 0.0,
                "Has Stratum": self.miner.config.solo is None, "Stratum Active": bool(p["active"]),
                "Stratum URL": _no_credentials(str(p["url"])) if p["active"] else "",
                "Stratum Difficulty": p.get("difficulty") or 0.0,
                "Has Vmask": self.miner.config.version_rolling, "Has GBT":
                    self.miner.config.solo is not None,
                "Best Share": int(c.best_since_zero),
                "Pool Rejected%": _pct(c.diff_rejected, c.diff_accepted + c.diff_rejected
                                       + c.diff_stale),
                "Pool Stale%": _pct(c.diff_stale, c.diff_accepted + c.diff_rejected
                                    + c.diff_stale),
                "Bad Work": 0, "Current Block Height": 0, "Current Block Version": 0,
            })
        return Reply(MSG_POOL, f"{len(rows)} Pool(s)", sections=[("POOLS", rows)])

    def cmd_stats(self, param: str) -> Reply:
        s = self._summary()
        rows = []
        for i, d in enumerate(s["devices"]):
            rows.append({"STATS": i, "ID": d["name"], "Elapsed": int(s["elapsed_s"]),
                         "Calls": 0, "Wait": 0.0, "Max": 0.0, "Min": 0.0,
                         "Kind": d["kind"], "Impl": d["impl"], "Hashes": d["hashes"],
                         "Batch Size": d["batch_size"], "Latency ms": d["latency_ms"],
                         "Utilisation": d["utilisation"], "Score": d["score"],
                         "Error Rate": d["error_rate"]})
        return Reply(MSG_MINESTATS, "sgm stats", sections=[("STATS", rows)])

    def cmd_devdetails(self, param: str) -> Reply:
        rows = []
        kind_index: dict[str, int] = {}
        for i, d in enumerate(self.miner.devices):
            kind = "cpu" if d.kind == "cpu" else "gpu"
            k = kind_index.get(kind, 0)
            kind_index[kind] = k + 1
            rows.append({"DEVDETAILS": i, "Name": "CPU" if kind == "cpu" else "OCL", "ID": k,
                         "Driver": d.kind, "Kernel": d.impl, "Model": d.name,
                         "Device Path": d.name})
        return Reply(MSG_DEVDETAILS, "Device Details", sections=[("DEVDETAILS", rows)])

    def cmd_coin(self, param: str) -> Reply:
        job = self.miner.scheduler.current_job
        netdiff = self.miner.network_difficulty()
        return Reply(MSG_MINECOIN, "sgm coin", sections=[("COIN", [{
            "Hash Method": "sha256", "Current Block Time": float(job.ntime) if job else 0.0,
            "Current Block Hash": job.prevhash.hex() if job is not None and
            isinstance(getattr(job, "prevhash", None), (bytes, bytearray)) else "",
            "LP": False, "Network Difficulty": netdiff or 0.0}])])

    # ------------------------------------------------------------------ privileged
    def _privileged(self, name: str, param: str, after: list[Callable[[], Any]]) -> Reply:
        m = self.miner
        if name in ("switchpool", "enablepool", "disablepool", "removepool"):
            i = _int_param(param, MSG_MISPID, "Missing pool id parameter", MSG_INVPID)
            label = self._pool_label(i)
            try:
                if name == "switchpool":
                    m.switch_pool(i)
                    return Reply(MSG_SWITCHP, f"Switching to pool {i}:'{label}'")
                if name == "enablepool":
                    if not m.pool_disabled[i]:
                        return Reply(MSG_ALRENAP, f"Pool {i}:'{label}' already enabled", "I")
                    m.set_pool_enabled(i, True)
                    return Reply(MSG_ENAPOOL, f"Enabling pool {i}:'{label}'")
                if name == "disablepool":
                    if m.pool_disabled[i]:
                        return Reply(MSG_ALRDISP, f"Pool {i}:'{label}' already disabled", "I")
                    m.set_pool_enabled(i, False)
                    return Reply(MSG_DISPOOL, f"Disabling pool {i}:'{label}'")
                m.remove_pool(i)
                return Reply(MSG_REMPOOL, f"Removed pool {i}:'{label}'")
            except ValueError as exc:
                text = str(exc)
                code = MSG_DISLASTP if "last enabled" in text else MSG_REMLASTP \
                    if "last pool" in text else MSG_ACTPOOL if "active" in text else MSG_INVPID
                raise ApiError(code, f"{text[:1].upper()}{text[1:]}") from None
        if name == "addpool":
            if not param:
                raise ApiError(MSG_MISPDP, "Missing addpool details")
            fields = _split_escaped(param)
            if len(fields) != 3 or not fields[0]:
                raise ApiError(MSG_INVPDP, "Invalid addpool details: give URL,USER,PASS")
            try:
                m.add_pool(fields[0], fields[1], fields[2])
            except ValueError as exc:
                raise ApiError(MSG_INVPDP, f"Invalid addpool details: {exc}") from None
            return Reply(MSG_ADDPOOL, f"Added pool {len(m.config.pools) - 1}: "
                         f"'{_no_credentials(fields[0])}'")
        if name == "poolpriority":
            try:
                order = [int(x) for x in param.split(",") if x.strip()]
            except ValueError:
                raise ApiError(MSG_INVPID, f"Invalid pool id list '{param[:64]}'") from None
            if not order:
                raise ApiError(MSG_MISPID, "Missing pool id parameter")
            if len(set(order)) != len(order):
                raise ApiError(MSG_DUPPID, "Duplicate pool specified")
            try:
                m.set_pool_priority(order)
            except ValueError as exc:
                raise ApiError(MSG_INVPID, str(exc)) from None
            return Reply(MSG_POOLPRIO, "Changed pool priorities")
        if name.endswith(("enable", "disable")):
            return self._device_switch(name, param)
        if name == "save":
            return self._save(param)
        if name == "zero":
            what, _, summary = param.partition(",")
            if what.strip().lower() not in ("all", "bestshare"):
                raise ApiError(MSG_ZERINV, f"Invalid zero parameter '{param[:64]}'")
            s = m.summary()
            self._zero = s
            with self._lock:
                self._total.best_since_zero = 0.0
            with_summary = summary.strip().lower() in ("true", "1", "y", "yes")
            return Reply(MSG_ZERSUM if with_summary else MSG_ZERNOSUM,
                         f"Zeroed {what.strip().lower()} stats "
                         f"{'with' if with_summary else 'without'} summary")
        if name == "quit":
            if self.on_quit is not None:
                after.append(self.on_quit)
            return Reply(MSG_BYE, "BYE")
        if name == "restart":
            if self.on_restart is None:
                raise ApiError(MSG_INVCMD, "restart is not available here")
            after.append(self.on_restart)
            return Reply(MSG_BYE, "RESTART")
        raise ApiError(MSG_INVCMD, "Invalid command")

    def _pool_label(self, i: int) -> str:
        pools = self.miner.config.pools
        if not 0 <= i < len(pools):
            raise ApiError(MSG_INVPID, f"Invalid pool id {i} - range is 0 - {max(0, len(pools) - 1)}")
        return _no_credentials(pools[i].url)

    def _device_switch(self, name: str, param: str) -> Reply:
        enable = name.endswith("enable")
        prefix = name[:3]
        devices = list(self.miner.devices)
        if prefix == "cpu":
            devices = [d for d in devices if d.kind == "cpu"]
        elif prefix == "gpu":
            devices = [d for d in devices if d.kind != "cpu"]
        label = prefix.upper()
        if not devices:
            raise ApiError(MSG_INVDEV, f"No {label}s")
        i = _int_param(param, MSG_MISID, "Missing device id", MSG_INVDEV)
        if not 0 <= i < len(devices):
            raise ApiError(MSG_INVDEV, f"Invalid {label} id {i} - range is 0 - {len(devices) - 1}")
        dev = devices[i]
        if dev.enabled == enable:
            return Reply(MSG_ALRENADEV if enable else MSG_ALRDISDEV,
                         f"{label} {i} already {'enabled' if enable else 'disabled'}", "I")
        self.miner.set_device_enabled(dev.name, enable)
        return Reply(MSG_DEVENA if enable else MSG_DEVDIS,
                     f"{label} {i} ({dev.name}) {'sent enable message' if enable else 'set disable flag'}")

    def _save(self, param: str) -> Reply:
        path = param.strip() or self.config_path
        if not path:
            raise ApiError(MSG_NOSAVE, "No config file to save to: give save|PATH")
        cfg = self.miner.config
        data: dict[str, Any] = {}
        target = Path(path)
        try:
            if target.exists():
                data = json.loads(target.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise ApiError(MSG_SAVEFAIL, f"Failed to read the config file to update: {exc}") from None
        if cfg.pools:
            # the file is the user's own configuration: it keeps the passwords (the reply
            # never shows them)
            data["pools"] = [{"url": p.url, "user": p.user, "pass": p.password}
                             for p in cfg.pools]
        if cfg.threads is not None:
            data["threads"] = cfg.threads
        data["devices"] = ",".join(cfg.device_kinds)
        try:
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            tmp.replace(target)
        except OSError as exc:
            raise ApiError(MSG_SAVEFAIL, f"Failed to save the config file: {exc.strerror or exc}") from None
        return Reply(MSG_SAVED, f"Configuration saved to file '{path}'")


def _int_param(param: str, missing_code: int, missing_msg: str, bad_code: int) -> int:
    text = param.strip()
    if not text:
        raise ApiError(missing_code, missing_msg)
    try:
        return int(text)
    except ValueError:
        raise ApiError(bad_code, f"Invalid id '{text[:32]}'") from None


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _no_credentials(url: str) -> str:
    """A URL without any user:password@ part (an http:// node URL may carry one)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    return f"{scheme}://{host}{slash}{path}"


def handle_request(api: CgminerApi, data: bytes, privileged: bool) -> str:
    """The reply text to one request (for callers that hold no connection)."""
    return api.handle_request(data, privileged)[0]
