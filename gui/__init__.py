"""sgm's desktop app (``sgm-gui``): a PySide6 window over the mining engine.

The source lives in the repository's ``gui/`` folder and installs as the package ``sgm_gui``.
It imports the engine only through :mod:`sgm.api` (the ``Miner`` facade, its telemetry
event types, the validation helpers and the benchmark entry point), never engine methods
on the GUI thread, and the engine never imports Qt; ``tests/test_import_contracts.py`` runs
the import-linter contracts of ``pyproject.toml`` that hold both rules.  Imports inside the
package are relative.
"""
