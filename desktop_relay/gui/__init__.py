"""The operator's window (PySide6): observes and drives the Qt-free relay core."""
