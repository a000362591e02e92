"""A small synthetic person re-id dataset in the generic layout, for training and evaluation tests.

Each identity has its own clothing: shirt and trouser colours, a shirt pattern (plain, horizontal or vertical
stripes) and a bag on one side or none. Each camera adds its own colour cast and brightness, and every image gets
noise, a random shift and a random background, so matching needs the identity's appearance, not pixel equality.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def person_image(identity_seed: int, camera: int, rng: np.random.Generator, size=(128, 64)) -> np.ndarray:
    """``uint8 [h, w, 3]`` BGR image of identity ``identity_seed`` seen by ``camera``."""
    h, w = size
    look = np.random.default_rng(10_000 + identity_seed)
    shirt, trousers = look.integers(20, 236, 3), look.integers(20, 236, 3)
    pattern, bag = int(look.integers(0, 3)), int(look.integers(0, 3))
    image = np.full((h, w, 3), rng.integers(60, 200, 3), dtype=np.float32)
    image += rng.normal(0, 12, image.shape)
    dx, dy = int(rng.integers(-4, 5)), int(rng.integers(-4, 5))
    cx = w // 2 + dx
    cv2.ellipse(image, (cx, 14 + dy), (8, 11), 0, 0, 360, (120, 150, 200), -1)
    top, bottom = (cx - 14, 26 + dy), (cx + 14, 72 + dy)
    cv2.rectangle(image, top, bottom, shirt.tolist(), -1)
    if pattern == 1:
        for y in range(top[1], bottom[1], 8):
            cv2.line(image, (top[0], y), (bottom[0], y), (255 - shirt).tolist(), 2)
    elif pattern == 2:
        for x in range(top[0], bottom[0], 7):
            cv2.line(image, (x, top[1]), (x, bottom[1]), (255 - shirt).tolist(), 2)
    cv2.rectangle(image, (cx - 13, 72 + dy), (cx - 2, 124 + dy), trousers.tolist(), -1)
    cv2.rectangle(image, (cx + 2, 72 + dy), (cx + 13, 124 + dy), trousers.tolist(), -1)
    if bag:
        side = -1 if bag == 1 else 1
        cv2.rectangle(image, (cx + side * 16, 45 + dy), (cx + side * 26, 70 + dy), (30, 30, 30), -1)
    cast = np.random.default_rng(camera).uniform(0.8, 1.2, 3)
    image = image * cast * rng.uniform(0.85, 1.15)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_generic_dataset(
    root: Path, train_ids: int = 16, test_ids: int = 10, per_camera: int = 4, cameras: int = 2, seed: int = 0
) -> Path:
    """Write ``<root>/{train,query,gallery}/<pid>/<camid>_<n>.jpg``.

    Train: ``train_ids`` identities x ``cameras`` x ``per_camera`` images. Test identities are disjoint from
    training ones: one query per identity from camera 1, and ``per_camera`` gallery images from every camera
    (camera-1 ones are excluded by the protocol for that query).
    """
    rng = np.random.default_rng(seed)
    for split in ("train", "query", "gallery"):
        (root / split).mkdir(parents=True, exist_ok=True)

    def save(split: str, pid: int, cam: int, n: int) -> None:
        folder = root / split / str(pid)
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{cam}_{n:03d}.jpg"), person_image(pid, cam, rng))

    for pid in range(1, train_ids + 1):
        for cam in range(1, cameras + 1):
            for n in range(per_camera):
                save("train", pid, cam, n)
    for pid in range(train_ids + 1, train_ids + test_ids + 1):
        save("query", pid, 1, 0)
        for cam in range(1, cameras + 1):
            for n in range(per_camera):
                save("gallery", pid, cam, n + 1)
    return root
