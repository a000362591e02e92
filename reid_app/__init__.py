"""reid-app: multi-camera person re-identification for video surveillance.

This package is the top floor: the command-line interface (the composition root), the runners that build the
models for a command (``ingest_runner``, ``live_session``) and the Ray cluster drivers. Nothing below it imports
it; the shared types, errors and settings live in ``common``.
"""

__version__ = "0.1.0"
