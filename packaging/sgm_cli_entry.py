"""Frozen entry point of the bundle's ``sgm`` executable (PyInstaller runs this file as
``__main__``; the console script ``sgm = sgm.cli:main`` is not a file it can freeze)."""
import sys

from sgm.cli import main

if __name__ == "__main__":
    sys.exit(main())
