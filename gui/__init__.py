"""sgm's desktop app (``sgm-gui``): a PySide6 window over the mining engine.

The source lives in the repository's ``gui/`` folder and installs as the package ``sgm_gui``.
It knows the engine only through the :class:`sgm.miner.Miner` facade and the telemetry
events (:mod:`sgm.telemetry`); the engine never imports Qt.
"""
