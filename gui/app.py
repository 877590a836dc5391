"""``sgm-gui``: the desktop app's entry point.

Parses the mining options (the same names as ``sgm``), reads the settings from the CLI's
config file (``-c FILE``, default: the user config directory), opens the window and starts
mining -- out of the box the embedded local pool, like ``sgm``.  For scripted runs:
``--quit-after SECONDS``, ``--screenshot PATH`` (PNG of the window just before quitting) and
``--summary-json PATH`` (the same object ``sgm`` writes).

Exit status: 0 after a clean quit, 2 for a usage error or no display to open the window on
(message on stderr), 1 when mining could not start in a scripted run or an output file could
not be written.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgm.api import UsageError, positive_float, positive_int

log = logging.getLogger("sgm.gui")

#: Embedded-pool defaults of the app: mine until told to stop (sgm's default is 3 jobs).
DEFAULT_BITS = 20
DEFAULT_JOB_SECONDS = 15.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sgm-gui",
        description="sgm's desktop app. With no pool (-o, or pools in the config file) it "
        "mines its embedded local Stratum pool on 127.0.0.1.")
    from sgm import __version__
    p.add_argument("--version", action="version", version=f"sgm-gui {__version__}")
    g = p.add_argument_group("pool")
    g.add_argument("-o", "--url", action="append", default=[], metavar="URL",
                   help="pool URL stratum+tcp://HOST:PORT; repeat for failover pools in "
                   "priority order (wins over the config file's pools)")
    g.add_argument("-u", "--user", action="append", default=[], metavar="USER",
                   help="pool user (wallet.worker), one per -o")
    g.add_argument("-p", "--pass", dest="password", action="append", default=[],
                   metavar="PASS", help="pool password, one per -o")
    g.add_argument("--suggest-diff", type=positive_float, default=None, metavar="D",
                   help="ask the pool for share difficulty D (mining.suggest_difficulty; "
                   "fractions allowed; wins over the config file's suggest-diff)")
    d = p.add_argument_group("embedded pool (no -o)")
    d.add_argument("--difficulty", type=positive_int, default=None, metavar="BITS",
                   help=f"leading zero bits of the share target (default {DEFAULT_BITS})")
    d.add_argument("--jobs", type=positive_int, default=None,
                   help="jobs the embedded pool issues, then mining stops (default: forever)")
    d.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                   help=f"seconds per job (default {DEFAULT_JOB_SECONDS:g})")
    c = p.add_argument_group("common")
    c.add_argument("-t", "--threads", type=positive_int, default=None,
                   help="CPU threads (default: one per core)")
    c.add_argument("--devices", default=None, metavar="KINDS",
                   help="devices to use, comma separated: cpu, opencl, opencl-gpu or names "
                   "from 'sgm devices' (default cpu,opencl-gpu)")
    c.add_argument("-c", "--config", metavar="FILE", default=None,
                   help="settings file, the same JSON file 'sgm -c' reads "
                   "(default: ~/.config/sgm/sgm.json)")
    s = p.add_argument_group("scripted runs")
    s.add_argument("--quit-after", type=positive_float, default=None, metavar="SECONDS",
                   help="quit (stopping mining cleanly) after this many seconds")
    s.add_argument("--screenshot", metavar="PATH", default=None,
                   help="save a PNG of the main window just before quitting")
    s.add_argument("--summary-json", metavar="PATH", default=None,
                   help="at exit write the final statistics (the object 'sgm' writes)")
    return p


def build_config(args: argparse.Namespace, settings: Any, path: Path,
                 warnings: list[str]) -> Any:
    """The MinerConfig, made the way ``sgm -c`` makes it: the file's values (read by the
    schema when the settings were loaded), the window's own settings over them, the
    command-line flags over those, and :func:`sgm.api.miner_config`.  The one difference
    is the embedded pool's default job count (forever, not 3).  Appends the engine's words
    about insecure or idle options to ``warnings``; raises UsageError."""
    from sgm.api import ConfigError, PoolEntry, config_warnings, flag_values, miner_config

    values: dict[str, Any] = dict(getattr(settings, "file_values", {}) or {})
    # what the window holds wins over the file (the user may have changed it since)
    owned = {"threads": settings.threads, "suggest-diff": settings.suggest_diff,
             "devices": tuple(k.strip() for k in settings.devices.split(",") if k.strip())
             if settings.devices else None}
    for key, value in owned.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    try:
        flags = flag_values(args)
        values.update(flags)
        if "pools" not in flags:
            values["pools"] = [PoolEntry(p.url, p.user, p.password) for p in settings.pools]
        cfg = miner_config(values, jobs_default=None)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    warnings.extend(config_warnings(cfg))
    return cfg


def display_problem(env: dict[str, str] | os._Environ[str] | None = None,
                    platform: str | None = None) -> str | None:
    """Why Qt could not open a window here, or None.  Qt itself aborts the process (a core
    dump and a page of plugin messages) when its platform finds no display, so the app
    asks first: on X11/Wayland desktops (not macOS or Windows) a window needs DISPLAY or
    WAYLAND_DISPLAY, unless QT_QPA_PLATFORM names a platform that needs neither."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform in ("darwin", "win32", "cygwin"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip()
    x11, wayland = bool(env.get("DISPLAY")), bool(env.get("WAYLAND_DISPLAY"))
    if chosen == "xcb" and not x11:
        return "no X display (set DISPLAY, or run with QT_QPA_PLATFORM=offscreen)"
    if chosen.startswith("wayland") and not wayland:
        return "no Wayland display (set WAYLAND_DISPLAY, or run with QT_QPA_PLATFORM=offscreen)"
    if not chosen and not (x11 or wayland):
        return "no display (set DISPLAY or run with QT_QPA_PLATFORM=offscreen)"
    return None


def _setup_logging() -> None:
    """Warnings and errors also go to stderr (the window sets what its log pane shows)."""
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:   # argparse: --help (0) or a usage error (2, message printed)
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

    from .settings import default_config_path, load_settings

    path = Path(args.config) if args.config else default_config_path()
    if args.config and not path.is_file():
        print(f"sgm-gui: error: config file {path}: no such file", file=sys.stderr)
        return 2
    settings, warnings = load_settings(path)
    try:
        config = build_config(args, settings, path, warnings)
    except UsageError as exc:
        print(f"sgm-gui: error: {exc}", file=sys.stderr)
        return 2
    problem = display_problem()
    if problem:
        print(f"sgm-gui: {problem}", file=sys.stderr)
        return 2
    _setup_logging()
    return _run(args, config, settings, path, warnings)


def _run(args: argparse.Namespace, config: Any, settings: Any, path: Path,
         warnings: list[str]) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .bridge import EngineBridge
    from .icon import make_icon
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("sgm")
    app.setApplicationDisplayName("sgm")
    app.setDesktopFileName("sgm-gui")
    app.setWindowIcon(make_icon())
    # closing to the tray must not end the app; the window's `closed` signal does
    app.setQuitOnLastWindowClosed(False)

    bridge = EngineBridge()
    window = MainWindow(bridge, config, settings, settings_path=path, warnings=warnings)
    outcome = {"rc": 0}

    def on_closed() -> None:
        # the final snapshot the bridge took after Miner.stop (no engine call on this thread)
        final = bridge.last_snapshot
        if args.summary_json and final is not None:
            try:
                Path(args.summary_json).write_text(
                    json.dumps(final["summary"], indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                print(f"sgm-gui: error: cannot write --summary-json {args.summary_json}: "
                      f"{exc.strerror or exc}", file=sys.stderr)
                outcome["rc"] = 1
        elif args.summary_json:
            print("sgm-gui: error: no summary: mining never started"
                  + (f" ({window.start_error})" if window.start_error else ""), file=sys.stderr)
            outcome["rc"] = 1
        app.quit()

    def screenshot() -> None:
        if args.screenshot:
            try:
                Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
                ok = window.grab().save(args.screenshot, "PNG")
            except OSError:
                ok = False
            if not ok:
                print(f"sgm-gui: error: cannot write --screenshot {args.screenshot}",
                      file=sys.stderr)
                outcome["rc"] = 1

    window.before_quit = screenshot
    window.closed.connect(on_closed)
    window.show()
    window.start_mining()
    if args.quit_after is not None:
        QTimer.singleShot(int(args.quit_after * 1000), window.request_quit)

    # Ctrl-C / SIGTERM quit cleanly (the timer lets Python run its signal handlers)
    def on_signal(_signum: int, _frame: Any) -> None:
        window.request_quit()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(200)
    try:
        app.exec()
    finally:
        heartbeat.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
    if window.start_error and args.quit_after is not None and outcome["rc"] == 0:
        outcome["rc"] = 1
    return outcome["rc"]


if __name__ == "__main__":
    raise SystemExit(main())
