"""`sgm` (mining): the embedded local pool by default, or `-o stratum+tcp://... -u ... -p ...`.

Prints the configuration, the devices with their measured scores and batch sizes, each job,
each share, a status line every 5 s and the final statistics.  Ctrl-C / SIGTERM stop
cleanly.  Exit status: 0 clean stop, 2 usage/config error, 1 any other failure.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sgm.cli_args import UsageError, int_in, positive_float, positive_int
from sgm.config import KEYS, config_warnings, flag_values, miner_config, read_config
from sgm.devices import DeviceSelectionError
from sgm.telemetry import DeviceEvent, Event, JobEvent, LogEvent, ShareEvent

if TYPE_CHECKING:
    from sgm.miner import MinerConfig

log = logging.getLogger("sgm")

API_PORT = 4028   # cgminer's

STATUS_INTERVAL = 5.0        # plain status lines (pipes, files)
LIVE_STATUS_INTERVAL = 1.0   # the live status line on a terminal
#: Loggers whose records report what the Printer already shows from telemetry events (pool
#: connects, disconnects and failed connects, protocol errors, a refused worker): their
#: records below ERROR reach stderr only with --verbose (or --quiet, where the Printer is
#: silent), so each pool happening is told once.
PRINTER_REPORTED_LOGGERS = ("sgm.stratum",)
#: Seconds to wait at exit for the Printer to print the events still buffered.
PRINTER_DRAIN_TIMEOUT = 5.0
#: Every key a config file may hold (the schema is sgm.config.KEYS).
CONFIG_KEYS = frozenset(KEYS)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sgm",
        description="SHA-256d miner. With no pool (-o) it mines its embedded local Stratum pool "
        "on 127.0.0.1. Subcommands: sgm bench | sgm scan | sgm devices | sgm pool | sgm farm (see sgm bench --help).",
    )
    g = p.add_argument_group("pool")
    g.add_argument("-o", "--url", action="append", default=[], metavar="URL",
                   help="pool URL stratum+tcp://HOST:PORT (stratum+ssl://, stratum+tcps://); "
                   "repeat for failover pools in priority order")
    g.add_argument("-u", "--user", action="append", default=[], metavar="USER",
                   help="pool user (wallet.worker), one per -o")
    g.add_argument("-p", "--pass", dest="password", action="append", default=[], metavar="PASS",
                   help="pool password, one per -o")
    g.add_argument("--solo", action="store_true",
                   help="solo mining against a node: -o http://USER:PASS@HOST:PORT "
                   "(getblocktemplate / submitblock)")
    g.add_argument("--coinbase-addr", metavar="ADDRESS",
                   help="--solo: the address the block reward goes to (bech32, bech32m or "
                   "base58; checked against the node's chain)")
    g.add_argument("--rpc-cookie", metavar="PATH",
                   help="--solo: the node's cookie file (e.g. ~/.bitcoin/.cookie) instead of "
                   "USER:PASS")
    g.add_argument("--suggest-diff", type=positive_float, default=None, metavar="D",
                   help="ask the pool for share difficulty D (mining.suggest_difficulty; "
                   "fractions allowed)")
    g.add_argument("--cert", metavar="FILE",
                   help="private CA certificate (PEM) to check a stratum+ssl:// pool "
                   "(or an https:// node) against")
    g.add_argument("--no-verify", action="store_true", default=None,
                   help="do not check TLS certificates (insecure)")
    g.add_argument("--no-version-rolling", action="store_true",
                   help="do not ask the pool for BIP 310 version rolling")
    d = p.add_argument_group("embedded pool (no -o)")
    d.add_argument("--jobs", type=positive_int, default=None,
                   help="jobs the embedded pool issues (default 3)")
    d.add_argument("--difficulty", type=positive_int, default=None, metavar="BITS",
                   help="leading zero bits of the share target (default 20)")
    d.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                   help="seconds per job (default 15)")
    c = p.add_argument_group("common")
    c.add_argument("-t", "--threads", type=positive_int, default=None,
                   help="CPU threads (default: one per core)")
    c.add_argument("--devices", default=None, metavar="KINDS",
                   help="which devices to use, comma separated: cpu, opencl (every OpenCL "
                   "device), opencl-gpu (OpenCL GPUs), or names from 'sgm devices' "
                   "(default cpu,opencl-gpu)")
    c.add_argument("--impl", default=None, help="CPU kernel (default: the fastest available)")
    c.add_argument("--opencl-kernel-time", type=positive_float, default=None, metavar="SECONDS",
                   help="time one OpenCL launch should take (default 0.005 on a GPU, 0.02 on an "
                   "OpenCL CPU device; longer launches "
                   "cost less overhead, shorter ones switch jobs sooner)")
    c.add_argument("--reserve-cpu-core", action="store_true", default=None,
                   help="run one CPU thread fewer per OpenCL GPU (for its host thread) when "
                   "-t is not given")
    c.add_argument("--batch-time", type=positive_float, default=None, metavar="SECONDS",
                   help="time one batch should take on any device (default 0.1)")
    c.add_argument("-c", "--config", metavar="FILE", help="JSON configuration file")
    c.add_argument("--time-limit", type=positive_float, default=None, metavar="SECONDS",
                   help="stop after this long")
    c.add_argument("--summary-json", metavar="PATH", default=None,
                   help="write the final statistics as JSON here at exit")
    c.add_argument("-q", "--quiet", action="store_true", default=None,
                   help="print only the final statistics")
    c.add_argument("--verbose", action="store_true", default=None, help="log more")
    c.add_argument("--version", action="version", version=_version(),
                   help="print the version and exit")
    o = p.add_argument_group("operations")
    o.add_argument("--api-listen", action="store_true", default=None,
                   help="serve the cgminer-compatible API (off by default)")
    o.add_argument("--api-port", type=int_in(0, 65535, "in 0 .. 65535"), default=None,
                   metavar="N", help=f"API port (default {API_PORT})")
    o.add_argument("--api-allow", default=None, metavar="LIST",
                   help="who may use the API, cgminer syntax: [W:]IP[/PREFIX],... (W: may "
                   "also run privileged commands; default 127.0.0.1 read-only). The API "
                   "binds 127.0.0.1 unless LIST names other networks")
    o.add_argument("--metrics-listen", default=None, metavar="HOST:PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone: "
                   "127.0.0.1)")
    o.add_argument("--log-file", default=None, metavar="PATH",
                   help="also log to this file (rotating, with times and levels)")
    o.add_argument("--sharelog", default=None, metavar="PATH",
                   help="append each share's verdict to this CSV file (time, device, pool, "
                   "job, nonce, difficulty, result, reason)")
    return p


def _version() -> str:
    from sgm.cli import version_text

    return version_text()


def _load_config(path: str) -> dict[str, Any]:
    """The config file's JSON object; UsageError when it cannot be read or is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:   # found by benchmarks/fuzz.py: a usage error, not a crash
        raise UsageError(f"config file {path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"config file {path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise UsageError(f"config file {path}: nested too deeply to read") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path}: expected a JSON object")
    return data


def build_config(args: argparse.Namespace) -> tuple[MinerConfig, dict[str, Any]]:
    """The config file (if any) read strictly by the schema, the command-line flags over
    it, the MinerConfig made the one way (sgm.config.miner_config) and the run's own
    options; raises UsageError (exit status 2) naming the key or flag at fault."""
    solo_flags = {"--coinbase-addr": args.coinbase_addr, "--rpc-cookie": args.rpc_cookie}
    flags = flag_values(args)
    values: dict[str, Any] = {}
    if args.config:
        values = read_config(_load_config(args.config), f"config file {args.config}",
                             strict=True, reader="sgm", solo=bool(args.solo)).values
    values.update(flags)
    if not values.get("solo"):
        for flag, value in solo_flags.items():
            if value is not None:
                raise UsageError(f"{flag} only applies to --solo")
    cfg = miner_config(values)
    extras: dict[str, Any] = {
        "time_limit": values.get("time-limit"),
        "summary_json": values.get("summary-json"),
        "quiet": bool(values.get("quiet", False)),
        "verbose": bool(values.get("verbose", False)),
        "warnings": config_warnings(cfg),
    }
    extras.update(_ops_options(args, values))
    return cfg, extras


def _ops_options(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    """--api-*, --metrics-listen, --log-file, --sharelog (flags over config keys)."""
    api = bool(values.get("api-listen", False))
    port = values.get("api-port")
    allow = values.get("api-allow")
    if (allow is not None or args.api_port is not None) and not api:
        raise UsageError("--api-port/--api-allow need --api-listen (the API is off by default)")
    return {"api": api, "api_port": API_PORT if port is None else port, "api_allow": allow,
            "metrics": values.get("metrics-listen"),
            "log_file": values.get("log-file"), "sharelog": values.get("sharelog"),
            "config_path": args.config}


# --------------------------------------------------------------------------- output
def _fmt_rate(h: float) -> str:
    for unit, scale in (("GH/s", 1e9), ("MH/s", 1e6), ("kH/s", 1e3)):
        if h >= scale:
            return f"{h / scale:.2f} {unit}"
    return f"{h:.0f} H/s"


def _fmt_count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


#: Share lines printed in one second at most; more are summed up in one line.
SHARE_LINES_PER_SECOND = 10
#: seconds the printer lets events gather before it takes them (see EventBus.subscribe)
PRINTER_GATHER_S = 0.05


class Printer:
    """Turns telemetry events into the miner's console lines (thread-safe).

    On a terminal a live status line stays at the bottom (rewritten in place) while job and
    share lines scroll above it; elsewhere (pipes, files) status lines are plain lines.
    :meth:`on_event` is meant for a callback subscription: it runs on the subscription's
    dispatcher thread, so a stalled stdout stalls only that thread, never the network loop
    or the devices.
    """

    def __init__(self, out: TextIO, quiet: bool, live: bool | None = None,
                 solo: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        #: solo mining: a block found prints one line (the node's verdict, from the solo
        #: client); its share and the job that follows it print none
        self.solo = solo
        self.t0 = time.monotonic()
        self.jobs = 0
        self._lock = threading.Lock()
        if live is None:
            live = not quiet and _isatty(out)
        self.live = live
        self._status = ""   # the live line currently shown (terminal only)
        # share lines this second, and those not shown (a flood is summed up once a second)
        self._second = 0
        self._shown = 0
        self._held: dict[str, int] = {}
        self._held_lock = threading.Lock()

    def line(self, text: str, force: bool = False) -> None:
        if self.quiet and not force:
            return
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            clear = "\r\x1b[K" if self._status else ""
            self._write(f"{clear}[{stamp}] {text}\n{self._status}")

    def _over_share_budget(self, verdict: str) -> bool:
        """Whether this share's line is held back: past SHARE_LINES_PER_SECOND lines in the
        current second, shares are counted and said once a second in one line, so the
        output stays readable (and cheap) in any flood; the counts are exact."""
        second = int(time.monotonic())
        if second != self._second:
            self.flush_held()
            self._second, self._shown = second, 0
        if self._shown < SHARE_LINES_PER_SECOND:
            self._shown += 1
            return False
        key = verdict.split(" ", 1)[0].lower()
        with self._held_lock:
            self._held[key] = self._held.get(key, 0) + 1
        return True

    def flush_held(self) -> None:
        with self._held_lock:
            held, self._held = self._held, {}
        if held:
            self.line(f"... and {sum(held.values()):,} more shares ("
                      + ", ".join(f"{n:,} {k}" for k, n in sorted(held.items()))
                      + ") not shown one by one")

    def status(self, text: str) -> None:
        """The live status line (terminal) or a plain status line."""
        self.flush_held()
        if not self.live:
            self.line(f"status: {text}")
            return
        with self._lock:
            self._status = f"[{time.strftime('%H:%M:%S')}] {text}"
            self._write(f"\r\x1b[K{self._status}")

    def end_status(self) -> None:
        self.flush_held()
        with self._lock:
            if self._status:
                self._status = ""
                self._write("\n")

    def _write(self, data: str) -> None:
        try:
            self.out.write(data)
            self.out.flush()
        except (BrokenPipeError, ValueError):
            pass

    def on_event(self, ev: Event) -> None:
        if isinstance(ev, JobEvent):
            self.jobs += 1
            if not self.solo:
                self.line(f"job {ev.job_id}{' (clean)' if ev.clean else ''}")
        elif isinstance(ev, ShareEvent):
            if ev.accepted is None or self.solo:
                return  # found; the pool's answer follows
            if ev.accepted:
                verdict = "accepted"
            elif ev.reason == "stale":      # its job was gone: never submitted, or refused so
                verdict = "stale"
            else:
                verdict = f"REJECTED ({ev.reason})"
            if self._over_share_budget(verdict):
                return
            self.line(f"share {ev.device} nonce {ev.nonce:08x} diff {ev.difficulty:.4g} "
                      f"job {ev.job_id}: {verdict}")
        elif isinstance(ev, DeviceEvent) and ev.what in ("enabled", "disabled", "hw_error"):
            self.line(f"{ev.device}: {ev.what} {ev.detail}".rstrip())
        elif isinstance(ev, LogEvent) and ev.level in ("WARNING", "ERROR", "CRITICAL"):
            self.line(f"{ev.level.lower()}: {ev.message}")
        elif isinstance(ev, LogEvent) and ev.level == "INFO":
            self.line(ev.message)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def _print_final(out: TextIO, summary: dict[str, Any], solo: bool = False) -> None:
    s = summary
    lines = [
        "",
        "=== sgm final statistics ===",
        f"elapsed {s['elapsed_s']:.1f} s | hashes {_fmt_count(s['hashes'])} | "
        f"average {_fmt_rate(s['hashrate'])}",
        f"shares: accepted {s['accepted']}  rejected {s['rejected']}  stale {s['stale']}  "
        f"hw errors {s['hw_errors']}  best share diff {s['best_share_diff']:.4g}",
        *([f"blocks: found {s['blocks_found']}  accepted {s['blocks_accepted']}"] if solo else []),
        f"{'device':8s} {'impl':8s} {'hashrate':>12s} {'accepted':>8s} {'hw err':>6s} "
        f"{'err rate':>8s} {'latency':>9s} {'batch':>10s} {'util':>5s}",
    ]
    for d in s["devices"]:
        lines.append(
            f"{d['name']:8s} {d['impl']:8s} {_fmt_rate(d['hashrate']):>12s} {d['accepted']:8d} "
            f"{d['hw_errors']:6d} {100 * d['error_rate']:7.2f}% {d['latency_ms']:7.1f}ms "
            f"{d['batch_size']:10d} {100 * d['utilisation']:4.0f}%")
    try:
        out.write("\n".join(lines) + "\n")
        out.flush()
    except (BrokenPipeError, ValueError):
        pass


class _NotPrintedTwice(logging.Filter):
    """Drops the records of :data:`PRINTER_REPORTED_LOGGERS` below ERROR: the Printer
    prints the same happenings from telemetry events."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return not any(record.name == name or record.name.startswith(name + ".")
                       for name in PRINTER_REPORTED_LOGGERS)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    """The engine's log records go to stderr: WARNING and up (INFO and up with --verbose).

    One voice per pool happening: on stdout the Printer tells pool connects, disconnects,
    failed connects and protocol errors (from the Miner's telemetry log events), so the
    Stratum client's own records of them are not also echoed on stderr -- unless
    ``verbose`` (everything, for diagnosis) or ``quiet`` (the Printer prints no such lines,
    so stderr is their only voice)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if not verbose and not quiet:
        handler.addFilter(_NotPrintedTwice())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def _add_odds(miner: Any, summary: dict[str, Any]) -> None:
    """The summary's network difficulty of the last work and the expected time to a block
    at the run's average hash rate (None where unknown)."""
    from sgm.ops.odds import expected_block_seconds

    netdiff = miner.network_difficulty()
    summary["network_difficulty"] = netdiff
    summary["expected_block_s"] = expected_block_seconds(netdiff, summary["hashrate"])


def cmd_mine(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(list(argv))
    cfg, extras = build_config(args)
    _setup_logging(extras["verbose"], extras["quiet"])

    from sgm.miner import Miner

    out = sys.stdout
    printer = Printer(out, extras["quiet"], solo=cfg.solo is not None)
    for warning in extras["warnings"]:
        print(f"sgm: warning: {warning}", file=sys.stderr)
    miner = Miner(cfg)
    stop = threading.Event()
    reason = {"why": "stopped"}
    try:
        ops = _start_ops(miner, cfg, extras, stop, reason)
    except _OpsError as exc:
        print(f"sgm: error: {exc}", file=sys.stderr)
        return 1
    try:
        return _mine(miner, cfg, extras, printer, stop, reason, out)
    finally:
        ops.close()
        if reason.get("restart"):
            _restart_process()


class _OpsError(Exception):
    """An operations service (API, metrics, log files) could not start."""


class _Ops:
    """The operations services of one run, closed in reverse order."""

    def __init__(self) -> None:
        self.closers: list[Any] = []

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing the others matters more
                log.exception("closing %r failed", closer)
        self.closers.clear()


def _secrets(cfg: Any) -> list[str]:
    """The passwords sgm knows, masked in the log file."""
    out = [p.password for p in cfg.pools]
    if cfg.solo is not None and cfg.solo.password:
        out.append(cfg.solo.password)
    return out


def _start_ops(miner: Any, cfg: Any, extras: dict[str, Any], stop: threading.Event,
               reason: dict[str, Any]) -> _Ops:
    ops = _Ops()
    try:
        if extras["log_file"]:
            from sgm.ops.logs import EventLog, open_log_file

            try:
                handler = open_log_file(extras["log_file"], _secrets(cfg), extras["verbose"])
            except OSError as exc:
                raise _OpsError(f"cannot open --log-file {extras['log_file']}: "
                                f"{exc.strerror or exc}") from None
            events = EventLog(handler).attach(miner)

            def close_log() -> None:
                events.close()
                logging.getLogger().removeHandler(handler)
                handler.close()
            ops.closers.append(close_log)
        if extras["sharelog"]:
            from sgm.ops.sharelog import ShareLog

            try:
                sharelog = ShareLog(extras["sharelog"]).attach(miner)
            except OSError as exc:
                raise _OpsError(f"cannot open --sharelog {extras['sharelog']}: "
                                f"{exc.strerror or exc}") from None
            ops.closers.append(sharelog.close)
        if extras["metrics"] is not None:
            from sgm.ops.metrics import MetricsServer

            host, port = extras["metrics"]
            try:
                metrics = MetricsServer(miner, host, port).start()
            except OSError as exc:
                raise _OpsError(f"--metrics-listen {host}:{port}: {exc.strerror or exc}") from None
            ops.closers.append(metrics.stop)
            print(f"sgm: metrics on http://{host}:{metrics.port}/metrics", file=sys.stderr)
        if extras["api"]:
            from sgm.ops.cgminer_api import CgminerApi

            def on_quit() -> None:
                reason["why"] = "API quit"
                stop.set()

            def on_restart() -> None:
                reason["why"], reason["restart"] = "API restart", True
                stop.set()

            api = CgminerApi(miner, port=extras["api_port"], allow=extras["api_allow"],
                             on_quit=on_quit, on_restart=on_restart,
                             config_path=extras["config_path"])
            try:
                api.start()
            except OSError as exc:
                raise _OpsError(f"--api-port {extras['api_port']}: cannot listen on "
                                f"{api.host}: {exc.strerror or exc}") from None
            ops.closers.append(api.stop)
            print(f"sgm: cgminer API on {api.host}:{api.port}", file=sys.stderr)
    except BaseException:
        ops.close()
        raise
    return ops


def _restart_process() -> None:
    """The API's `restart`: run sgm again with the same arguments, in this process."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "sgm", *sys.argv[1:]])


def _status_odds(miner: Any, hashrate: float) -> str:
    """" | block ~3.2e+05 years" where the network difficulty is known, else ""."""
    from sgm.ops.odds import expected_block_seconds, format_duration

    eta = expected_block_seconds(miner.network_difficulty(), hashrate)
    return f" | block ~{format_duration(eta)}" if eta is not None else ""


def _mine(miner: Any, cfg: Any, extras: dict[str, Any], printer: Printer,
          stop: threading.Event, reason: dict[str, Any], out: TextIO) -> int:
    from sgm import _native

    if cfg.solo is not None:
        printer.line(f"solo: node {cfg.solo.endpoint()}, reward to {cfg.solo.address}")
    elif cfg.pools:
        printer.line("pools: " + ", ".join(f"{p.url} ({p.user or '-'})" for p in cfg.pools))
    else:
        printer.line(f"embedded local pool: {cfg.local_jobs} job(s) x {cfg.local_job_interval:g} s, "
                     f"share target {cfg.local_difficulty_bits} leading zero bits")
    printer.line(f"config: devices {','.join(cfg.device_kinds)}, threads "
                 f"{cfg.threads or 'auto'}, kernel {cfg.impl or _native.default_implementation()}, "
                 f"batch time {cfg.batch_time * 1e3:.0f} ms"
                 + (f", time limit {extras['time_limit']:g} s" if extras["time_limit"] else ""))

    def on_signal(signum: int, _frame: Any) -> None:
        reason["why"] = signal.Signals(signum).name
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    # the Printer runs on the subscription's own thread: a slow stdout cannot stall the pool
    # lines reach a terminal within a twentieth of a second; in a share flood the printer's
    # thread then wakes 20 times a second, not once for every few shares
    sub = miner.subscribe(printer.on_event, maxsize=10_000, gather=PRINTER_GATHER_S)
    try:
        try:
            miner.start()
        except DeviceSelectionError as exc:   # a device named in --devices is not here
            print(f"sgm: error: {exc}", file=sys.stderr)
            return 2
        except (ValueError, RuntimeError, OSError) as exc:
            from sgm.solo.client import SoloConfigError

            if isinstance(exc.__cause__, SoloConfigError):
                # the address does not fit the node's chain: a configuration error, like
                # a malformed address (found before mining starts)
                print(f"sgm: error: {exc.__cause__}", file=sys.stderr)
                return 2
            print(f"sgm: error: {exc}", file=sys.stderr)
            return 1
        for d in miner.devices:
            printer.line(f"device {d.name}: {d.kind} {d.impl}, score {_fmt_rate(d.score)}, "
                         f"batch {d.sizer.size() if d.sizer else 0} nonces")
        if miner.local_pool is not None:
            printer.line(f"embedded pool listening on {miner.local_pool.url}")
        started = time.monotonic()
        interval = LIVE_STATUS_INTERVAL if printer.live else STATUS_INTERVAL
        next_status = started + interval
        while not stop.is_set():
            now = time.monotonic()
            limit = extras["time_limit"]
            if limit is not None and now - started >= limit:
                reason["why"] = "time limit"
                break
            if miner.finished.is_set():
                reason["why"] = f"{cfg.local_jobs} job(s) done"
                break
            wait = next_status - now
            if limit is not None:
                wait = min(wait, started + limit - now)
            if stop.wait(max(0.01, min(wait, 0.5))):
                break
            if time.monotonic() >= next_status:
                next_status += interval
                snap = miner.telemetry.snapshot()
                rates = snap["rates"]
                printer.status(
                    f"{_fmt_rate(rates['5s'])} (5s) {_fmt_rate(rates['1m'])} (1m) | "
                    f"accepted {snap['accepted']} rejected {snap['rejected']} stale {snap['stale']} "
                    f"hw {snap['hw_errors']} | hashes {_fmt_count(snap['hashes'])}"
                    + _status_odds(miner, rates['1m'] or rates['5s']))
        printer.end_status()
        printer.line(f"stopping: {reason['why']}")
    finally:
        miner.stop()
        # after stop(): the last share verdicts are buffered by now; print them (bounded
        # wait) before the final statistics
        sub.close(timeout=PRINTER_DRAIN_TIMEOUT)
        printer.flush_held()     # the last second's summed-up share lines
        for s, handler in old.items():
            signal.signal(s, handler)
    summary = miner.summary()
    _add_odds(miner, summary)
    _print_final(out, summary, solo=cfg.solo is not None)
    if extras["summary_json"]:
        try:
            Path(extras["summary_json"]).write_text(json.dumps(summary, indent=2) + "\n")
        except OSError as exc:
            print(f"sgm: error: cannot write --summary-json {extras['summary_json']}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0
