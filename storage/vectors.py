"""Embeddings as stored: ``float32`` little-endian bytes, and the check that a vector is usable (finite, not zero)."""

from __future__ import annotations

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
