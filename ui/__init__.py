"""The PySide6 desktop app (windows, widgets, Qt item models, workers). Qt appears only in this package."""
