"""Screenshots of the desktop app as a new user sees it, window-manager frame included.

Run under an X server with a window manager, e.g. (see docs/screenshots/README.md)::

    Xvfb :7 -screen 0 1366x768x24 & DISPLAY=:7 openbox &
    DISPLAY=:7 HOME=$(mktemp -d) python docs/screenshots/shoot.py refused out.png

Scenarios: ``mining`` (the embedded pool), ``refused`` (a pool on a closed port),
``stopped`` (Stop all after mining started), ``pools`` (the Pools tab with a URL error).
The whole screen is grabbed after ``--after`` seconds, then the app quits cleanly.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=("mining", "refused", "stopped", "pools"))
    p.add_argument("out")
    p.add_argument("--after", type=float, default=8.0)
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
    bridge = EngineBridge()
    window = MainWindow(bridge, config, settings, settings_path=path, warnings=warnings)
    window.show()
    window.start_mining()

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
    QTimer.singleShot(int(opts.after * 1000), shoot)
    app.exec()
    closed.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
