"""Teacher embeddings for knowledge distillation, computed once per (teacher, image) and cached on disk.

Cache file per teacher: ``<folder>/teacher-<name>-<hash12>.npz`` (``hash12``: the first 12 hex digits of the
teacher's checkpoint hash, so a changed model never reuses stale vectors), holding ``paths`` (absolute image paths)
and ``embeddings`` (``float16 [N, D]``, L2-normalised, of the un-augmented image). ``folder`` is
``models.keypoint_cache``'s convention: ``<dataset root>/.reid-app`` when writable, else the fallback folder. Later
runs (``--resume``, other recipes) load it and encode only images not seen before.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.keypoint_cache import read_image
from models.npz_cache import load_npz_cache, save_npz_cache

log = logging.getLogger(__name__)


def teacher_cache_file(folder: Path, name: str, checkpoint_hash: str) -> Path:
    """The cache file of one teacher in ``folder``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(folder) / f"teacher-{safe}-{checkpoint_hash[:12]}.npz"


def teacher_embeddings(
    encoder,
    paths: Sequence[Path],
    cache_file: Path,
    batch_size: int = 64,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> np.ndarray:
    """One teacher's embeddings of every image, from the cache where present, otherwise encoded (then cached).

    Args:
        encoder: a ``models.encoders.ReIDEncoder`` (any backend: checkpoint, ONNX, OpenVINO IR).
        paths: image files.
        cache_file: from :func:`teacher_cache_file`.
        batch_size: images per ``encode`` call.
        on_progress: ``(done, total)`` over the images to encode.

    Returns:
        ``float32 [N, D]`` L2-normalised embeddings.

    Raises:
        DatasetError: an image cannot be read.
    """
    cached = load_npz_cache(cache_file, "embeddings")
    keys = [str(Path(p).resolve()) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cached]
    if todo:
        log.info("encoding %d images with teacher %s (cached in %s)", len(todo), encoder.name, cache_file)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        vectors = encoder.encode([read_image(paths[i]) for i in chunk])
        for i, v in zip(chunk, vectors):
            cached[keys[i]] = v
        done = start + len(chunk)
        if done == len(todo) or done // 2048 != start // 2048:  # an interrupted run keeps its work
            save_npz_cache(cache_file, cached, "embeddings")
        on_progress(done, len(todo))
    if not keys:
        return np.zeros((0, encoder.dims), np.float32)
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def combine_teachers(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """Several teachers' ``float32 [N, D_i]`` embeddings -> one ``float32 [N, sum D_i]`` target: each L2-normalised,
    concatenated, divided by ``sqrt(teachers)`` (unit norm; its cosine is the mean of the teachers' cosines)."""
    normalised = [e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12) for e in embeddings]
    return (np.concatenate(normalised, axis=1) / np.sqrt(len(normalised))).astype(np.float32)
