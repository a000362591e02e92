"""Embeddings as stored: ``float32`` little-endian bytes, and the check that a vector is usable (finite, not zero)."""

from __future__ import annotations

from typing import Optional

import numpy as np


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """Serialise a ``float32 [D]`` vector as little-endian bytes."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def bytes_to_vector(blob: bytes) -> np.ndarray:
    """Inverse of :func:`vector_to_bytes`: ``float32 [D]``."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def usable_embedding(vector: np.ndarray) -> bool:
    """A ``float32 [D]`` embedding worth storing: 1-D, every value finite, L2 norm above 1e-6."""
    return vector.ndim == 1 and bool(np.all(np.isfinite(vector))) and float(np.linalg.norm(vector)) > 1e-6


def bytes_to_keypoints(blob: Optional[bytes]) -> Optional[np.ndarray]:
    """Stored COCO-17 keypoints as ``float32 [17, 3]`` ``(x, y, confidence)``, or None (none stored, or not 51
    values)."""
    if blob is None:
        return None
    values = np.frombuffer(blob, dtype="<f4")
    return values.reshape(17, 3).copy() if values.size == 51 else None
