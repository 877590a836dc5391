"""Qt item models of the desktop app (the device table)."""
