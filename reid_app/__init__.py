"""reid-app: multi-camera person re-identification for video surveillance.

This package is the application shell: the command-line interface (the composition root), settings, weights
resolution and the plain data types shared by ``models``, ``pipelines``, ``storage`` and ``ui``.
"""

__version__ = "0.1.0"
