"""A path -> array cache in one ``.npz`` file (keypoints and teacher embeddings of dataset images).

File contents: ``paths`` (str ``[N]``) and one value array (``float16 [N, ...]``) named by the caller. Writes go to
a temporary file that is then renamed, so an interrupted write never leaves a half file behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def load_npz_cache(path: Path, values: str) -> dict[str, np.ndarray]:
    """``{path: float32 array}`` from ``path``; empty when the file is missing, truncated or foreign (with a
    warning: the caller recomputes rather than fails)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["paths"].tolist(), data[values].astype(np.float32)))
    except Exception as exc:
        log.warning("cache %s is unreadable (%s); recomputing it", path, type(exc).__name__)
        return {}


def save_npz_cache(path: Path, cached: dict[str, np.ndarray], values: str, compressed: bool = False) -> None:
    """Write ``cached`` atomically, values as float16."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    arrays = {"paths": np.array(list(cached), dtype=str), values: np.stack(list(cached.values())).astype(np.float16)}
    (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
    tmp.replace(path)
