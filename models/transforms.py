"""Training and test transforms that keep an image, its COCO-17 keypoints and its part boxes consistent.

Training (Luo et al. 2019, "Bag of Tricks"): resize to the network input (256x128 by default), random horizontal
flip (keypoints mirrored with left/right swapped, ``models.parts.flip_keypoints``), zero padding + random crop,
ImageNet normalisation, random erasing (Zhong et al., AAAI 2020: a random rectangle of 2-40% of the area, aspect
0.3-3.3, set to the dataset mean, i.e. 0 after normalisation). Part boxes are derived from the transformed keypoints,
so they follow the flip and the crop shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from models.parts import fallback_stripes, flip_keypoints, part_boxes_from_keypoints, stripe_boxes

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def normalise(image_rgb: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` RGB -> ``float32 [3, H, W]`` ImageNet-normalised."""
    return ((image_rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)


def part_boxes(keypoints: Optional[np.ndarray], height: int, width: int, num_parts: int, part_mode: str
               ) -> np.ndarray:
    """``float32 [P, 4]`` part boxes for an image of ``height x width`` pixels: pose-guided from ``keypoints``
    (``[17, 3]`` in the same pixels) with ``part_mode="pose"``, fixed stripes otherwise."""
    if part_mode == "stripes":
        return stripe_boxes(height, width, fallback_stripes(num_parts))
    return part_boxes_from_keypoints(keypoints, height, width, num_parts=num_parts)[0]


def random_erasing(image: np.ndarray, rng: np.random.Generator, area: tuple[float, float] = (0.02, 0.4),
                   aspect: tuple[float, float] = (0.3, 3.3), attempts: int = 20) -> np.ndarray:
    """Set one random rectangle of a normalised ``float32 [3, H, W]`` image to 0 (the mean), in place."""
    _, h, w = image.shape
    for _ in range(attempts):
        target = rng.uniform(*area) * h * w
        ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
        eh, ew = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if 0 < eh < h and 0 < ew < w:
            y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            image[:, y:y + eh, x:x + ew] = 0.0
            break
    return image


@dataclass
class TrainTransform:
    """Augmentation for training (module docstring).

    Attributes:
        input_size: ``(height, width)`` in pixels.
        num_parts, part_mode: as in ``JointLossConfig``.
        flip_probability: chance of a horizontal flip.
        padding: zero padding in pixels before the random crop back to ``input_size`` (0 disables).
        erasing_probability: chance of random erasing.
    """

    input_size: tuple[int, int] = (256, 128)
    num_parts: int = 4
    part_mode: str = "pose"
    flip_probability: float = 0.5
    padding: int = 10
    erasing_probability: float = 0.5

    def __call__(self, image_bgr: np.ndarray, keypoints: Optional[np.ndarray], rng: np.random.Generator,
                 flip: Optional[bool] = None) -> tuple[np.ndarray, np.ndarray]:
        """Augment one image.

        Args:
            image_bgr: ``uint8 [h, w, 3]`` BGR image as read by OpenCV.
            keypoints: ``float32 [17, 3]`` COCO-17 keypoints in the image's pixels, or None.
            rng: random source.
            flip: force (True/False) or leave to chance (None).

        Returns:
            ``(image, boxes)``: ``float32 [3, H, W]`` normalised RGB and ``float32 [P, 4]`` part boxes in pixels.
        """
        height, width = self.input_size
        h, w = image_bgr.shape[:2]
        image = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
        kp = None
        if keypoints is not None:
            kp = np.array(keypoints, dtype=np.float32, copy=True)
            kp[:, 0] *= width / w
            kp[:, 1] *= height / h
        if flip if flip is not None else rng.random() < self.flip_probability:
            image = image[:, ::-1]
            kp = flip_keypoints(kp, width)
        if self.padding > 0:
            pad = self.padding
            padded = cv2.copyMakeBorder(np.ascontiguousarray(image), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            dy, dx = int(rng.integers(0, 2 * pad + 1)), int(rng.integers(0, 2 * pad + 1))
            image = padded[dy:dy + height, dx:dx + width]
            if kp is not None:
                kp[:, 0] += pad - dx
                kp[:, 1] += pad - dy
                outside = (kp[:, 0] < 0) | (kp[:, 0] >= width) | (kp[:, 1] < 0) | (kp[:, 1] >= height)
                kp[outside, 2] = 0.0
        boxes = part_boxes(kp, height, width, self.num_parts, self.part_mode)
        tensor = normalise(np.ascontiguousarray(image))
        if rng.random() < self.erasing_probability:
            random_erasing(tensor, rng)
        return tensor, boxes
