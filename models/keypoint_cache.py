"""COCO-17 keypoints of a re-id dataset's images, computed once by a pose estimator and cached beside the dataset.

Cache file: ``<dataset root>/.reid-app/keypoints-<tag>.npz`` (``tag`` names the pose model), holding ``paths``
(image paths relative to the root) and ``keypoints`` (``float16 [N, 17, 3]``, NaN rows for images where no person
was found). When the dataset folder is read-only the cache goes to ``fallback_dir`` instead. Later runs (every epoch,
every evaluation) load it and only estimate images not seen before.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from common.errors import DatasetError
from models.npz_cache import load_npz_cache, save_npz_cache

log = logging.getLogger(__name__)

#: Estimates keypoints for a batch of BGR person images (``PoseEstimator``-like ``estimate_crops``).
CropPose = Callable[[list[np.ndarray]], list[Optional[np.ndarray]]]


def read_image(path: Path) -> np.ndarray:
    """``uint8 [h, w, 3]`` BGR image.

    Raises:
        DatasetError: the file is missing or not a readable image.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"image {path} is missing or not a readable image")
    return image


def cache_path(root: Path, tag: str, fallback_dir: Optional[Path] = None) -> Path:
    """Where the cache for ``root`` and pose model ``tag`` lives (beside the dataset when writable)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)
    beside = Path(root) / ".reid-app" / f"keypoints-{safe}.npz"
    if os.access(root, os.W_OK) or fallback_dir is None:
        return beside
    digest = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(fallback_dir) / f"keypoints-{digest}-{safe}.npz"


def dataset_keypoints(
    paths: Sequence[Path],
    root: Path,
    tag: str,
    estimate: CropPose,
    batch_size: int = 32,
    fallback_dir: Optional[Path] = None,
    on_progress: Callable[[int, int], None] = lambda d, t: None,
) -> np.ndarray:
    """Keypoints of every image, from the cache where present, otherwise estimated (and then cached).

    Args:
        paths: image files (inside ``root``).
        root: the dataset folder.
        tag: pose model name, part of the cache file name (a different model gets its own cache).
        estimate: batch pose estimator on BGR images.
        batch_size: images per ``estimate`` call.
        fallback_dir: cache folder when ``root`` is read-only.
        on_progress: called with ``(done, total)`` images to estimate.

    Returns:
        ``float32 [N, 17, 3]`` keypoints in each image's pixels; rows of NaN where no person was found.

    Raises:
        DatasetError: an image cannot be read.
    """
    file = cache_path(root, tag, fallback_dir)
    cached = load_npz_cache(file, "keypoints")
    keys = [os.path.relpath(p, root) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cached]
    save_every = 2048
    if todo:
        log.info("estimating keypoints of %d images with %s (cached in %s)", len(todo), tag, file)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        results = estimate([read_image(paths[i]) for i in chunk])
        for i, kp in zip(chunk, results):
            cached[keys[i]] = np.full((17, 3), np.nan, np.float32) if kp is None else np.asarray(kp, np.float32)
        done = start + len(chunk)
        if done == len(todo) or done // save_every != start // save_every:  # an interrupted run keeps its work
            save_npz_cache(file, cached, "keypoints", compressed=True)
        on_progress(min(start + batch_size, len(todo)), len(todo))
    if not paths:
        return np.zeros((0, 17, 3), np.float32)
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def as_optional(keypoints: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """One cached row -> ``float32 [17, 3]`` or None for a NaN (no person found) row or no keypoints at all."""
    if keypoints is None or np.isnan(keypoints).any():
        return None
    return keypoints
