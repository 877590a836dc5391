"""Screenshots of the desktop app as a new user sees it, window-manager frame included.

Run under an X server with a window manager, e.g. (see docs/screenshots/README.md)::

    Xvfb :7 -screen 0 1366x768x24 & DISPLAY=:7 openbox &
    DISPLAY=:7 HOME=$(mktemp -d) python docs/screenshots/shoot.py refused out.png

Scenarios: ``mining`` (the embedded pool), ``refused`` (a pool on a closed port),
``stopped`` (Stop all after mining started), ``pools`` (the Pools tab with a URL error),
``rigs`` (the Rigs tab watching three ``sgm --api-listen`` processes and a dead address),
``bench`` (the Benchmark tab measuring two kernels at 1 thread while mining is paused;
``--use KERNEL`` then keeps KERNEL as the default; SGM_CACHE_DIR keeps the real one safe).
The whole screen is grabbed after ``--after`` seconds, then the app quits cleanly.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=("mining", "refused", "stopped", "pools", "rigs", "bench"))
    p.add_argument("out")
    p.add_argument("--after", type=float, default=8.0)
    p.add_argument("--use", default=None, help="bench: keep this kernel as the default")
    p.add_argument("--at", type=float, default=None,
                   help="bench: seconds into the run to shoot (default --after)")
    opts = p.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("sgm")
    app.setApplicationDisplayName("sgm")
    app.setQuitOnLastWindowClosed(False)

    from sgm_gui import app as gui_app
    from sgm_gui.bridge import EngineBridge
    from sgm_gui.main_window import MainWindow
    from sgm_gui.settings import default_config_path, load_settings

    closed = socket.socket()          # bound, never listening: connections are refused
    closed.bind(("127.0.0.1", 0))
    argv = ["-t", "1", "--difficulty", "16"]
    if opts.scenario == "refused":
        argv = ["-t", "1", "-o", f"stratum+tcp://127.0.0.1:{closed.getsockname()[1]}",
                "-u", "wallet.worker"]
    args = gui_app.build_parser().parse_args(argv)
    path = default_config_path()
    settings, warnings = load_settings(path)
    config = gui_app.build_config(args, settings, path, warnings)
    rigs: list[subprocess.Popen[bytes]] = []
    if opts.scenario == "rigs":
        # three miners of their own, each with its cgminer API on a free loopback port,
        # and an address where nothing listens
        for bits in (17, 18, 19):
            port = _free_port()
            rigs.append(subprocess.Popen(
                [sys.executable, "-m", "sgm", "-t", "1", "--devices", "cpu", "-q",
                 "--difficulty", str(bits), "--jobs", "100", "--duration", "60",
                 "--time-limit", str(opts.after + 60), "--api-listen", "--api-port", str(port)]))
            settings.rigs.append(f"127.0.0.1:{port}")
        settings.rigs.append(f"127.0.0.1:{closed.getsockname()[1]}")
    bridge = EngineBridge()
    window = MainWindow(bridge, config, settings, settings_path=path, warnings=warnings)
    window.show()
    window.start_mining()
    if opts.scenario == "rigs":
        window.tabs.setCurrentWidget(window.rigs_tab)

    if opts.scenario == "bench":
        from sgm.api import kernel_choice

        tab = window.bench_tab
        tab.seconds_spin.setValue(0.5)
        tab.repeats_spin.setValue(1)
        tab.threads_spin.setValue(1)

        def bench() -> None:
            # the kernel mining uses (calibrated when it started) and one other
            default = kernel_choice().impl or "scalar"
            others = [k for k in (opts.use, "sha-ni", "avx2", "scalar") if k and k != default]
            tab._impls = [default, others[0]]
            window.tabs.setCurrentWidget(tab)
            tab.run()

        def use() -> None:
            for row, r in enumerate(tab._shown):
                if r.get("impl") == opts.use:
                    tab.table.selectRow(row)
                    tab.use_selected_kernel()
        QTimer.singleShot(3000, bench)
        if opts.use:
            tab.finished.connect(lambda _r: QTimer.singleShot(500, use))
    if opts.scenario == "stopped":
        QTimer.singleShot(int(opts.after * 500), window.stop_all)
    if opts.scenario == "pools":
        def bad_url() -> None:
            window.tabs.setCurrentWidget(window.pool_panel)
            window.pool_panel.set_form("stratum+tcp//bad", "wallet.worker")
            window.pool_panel.add_from_form()
        QTimer.singleShot(int(opts.after * 500), bad_url)

    def shoot() -> None:
        screen = app.primaryScreen()
        ok = screen.grabWindow(0).save(opts.out, "PNG")
        geo = window.frameGeometry()
        print(f"screen {screen.availableGeometry().width()}x"
              f"{screen.availableGeometry().height()}, window frame {geo.width()}x"
              f"{geo.height()} at {geo.x()},{geo.y()}, saved={ok}", flush=True)
        window.request_quit()

    window.closed.connect(app.quit)
    QTimer.singleShot(int((opts.at or opts.after) * 1000), shoot)
    app.exec()
    closed.close()
    for proc in rigs:
        proc.terminate()
        proc.wait(30)
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
