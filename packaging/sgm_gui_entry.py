"""Frozen entry point of the bundle's ``sgm-gui`` executable (the console script
``sgm-gui = sgm_gui.app:main`` as a file PyInstaller can freeze)."""
import sys

from sgm_gui.app import main

if __name__ == "__main__":
    sys.exit(main())
