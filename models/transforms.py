"""Training and test transforms that keep an image, its COCO-17 keypoints and its part boxes consistent.

Training (Luo et al. 2019, "Bag of Tricks"): resize to the network input (256x128 by default), random horizontal
flip (keypoints mirrored with left/right swapped, ``models.parts.flip_keypoints``), zero padding + random crop,
ImageNet normalisation, random erasing (Zhong et al., AAAI 2020: a random rectangle of 2-40% of the area, aspect
0.3-3.3, set to the dataset mean, i.e. 0 after normalisation). Part boxes are derived from the transformed keypoints,
so they follow the flip and the crop shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from models.parts import fallback_stripes, flip_keypoints, part_boxes_from_keypoints, stripe_boxes

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its pixels: ``x = (pixels[channel order] * scale - mean) / std``, NCHW float32.

    Attributes:
        channels: ``RGB`` or ``BGR``.
        scale: multiplier of the 0-255 pixel values (``1/255`` for [0, 1] inputs, 1 for 0-255 inputs).
        mean, std: per-channel, in the scaled units, in ``channels`` order.
    """

    channels: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = tuple(float(v) for v in IMAGENET_MEAN)
    std: tuple[float, float, float] = tuple(float(v) for v in IMAGENET_STD)

    def to_dict(self) -> dict:
        """Plain values for checkpoint metadata."""
        return {"channels": self.channels, "scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: a channel order other than RGB/BGR or a malformed value.
        """
        try:
            made = cls(
                str(data["channels"]).upper(),
                float(data["scale"]),
                tuple(float(v) for v in data["mean"]),
                tuple(float(v) for v in data["std"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed preprocessing {data!r} ({type(exc).__name__})") from None
        if made.channels not in ("RGB", "BGR") or len(made.mean) != 3 or len(made.std) != 3:
            raise ValueError(f"malformed preprocessing {data!r}")
        return made

    def neutral_value(self) -> np.ndarray:
        """``float32 [3]``: the ImageNet mean pixel in this convention (0 for ImageNet-normalised inputs), the fill
        of random erasing."""
        mean_bgr = (IMAGENET_MEAN[::-1] * 255.0).reshape(1, 1, 1, 3).astype(np.float32)
        pixels = mean_bgr[..., ::-1] if self.channels == "RGB" else mean_bgr
        return (
            ((pixels * np.float32(self.scale) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32))
            .reshape(3)
            .astype(np.float32)
        )

    def apply(self, resized_bgr: np.ndarray) -> np.ndarray:
        """``uint8 [N, H, W, 3]`` BGR -> ``float32 [N, 3, H, W]`` as the model wants it."""
        pixels = resized_bgr[..., ::-1] if self.channels == "RGB" else resized_bgr
        x = pixels.astype(np.float32) * np.float32(self.scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


#: ImageNet-normalised RGB in [0, 1] (torchvision, torchreid and BoxMOT exports, our own networks).
IMAGENET_RGB = Preprocessing()
#: BGR 0-255 with no mean/std: Intel Open Model Zoo person re-id IR models.
OPEN_MODEL_ZOO_BGR = Preprocessing("BGR", 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


#: Pixel conventions by the names ``models.backbones.BackboneSpec.preprocessing`` uses.
PREPROCESSINGS = {"imagenet_rgb": IMAGENET_RGB, "bgr255": OPEN_MODEL_ZOO_BGR}


def normalise(image_rgb: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` RGB -> ``float32 [3, H, W]`` ImageNet-normalised (:data:`IMAGENET_RGB`)."""
    return IMAGENET_RGB.apply(np.ascontiguousarray(image_rgb[None, ..., ::-1]))[0]


def part_boxes(keypoints: Optional[np.ndarray], height: int, width: int, num_parts: int, part_mode: str) -> np.ndarray:
    """``float32 [P, 4]`` part boxes for an image of ``height x width`` pixels: pose-guided from ``keypoints``
    (``[17, 3]`` in the same pixels) with ``part_mode="pose"``, fixed stripes otherwise."""
    if part_mode == "stripes":
        return stripe_boxes(height, width, fallback_stripes(num_parts))
    return part_boxes_from_keypoints(keypoints, height, width, num_parts=num_parts)[0]


def random_erasing(
    image: np.ndarray,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 0.4),
    aspect: tuple[float, float] = (0.3, 3.3),
    attempts: int = 20,
    value: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Set one random rectangle of a normalised ``float32 [3, H, W]`` image to ``value`` (``float32 [3]``; default
    0, the mean of an ImageNet-normalised image), in place."""
    _, h, w = image.shape
    for _ in range(attempts):
        target = rng.uniform(*area) * h * w
        ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
        eh, ew = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if 0 < eh < h and 0 < ew < w:
            y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            image[:, y : y + eh, x : x + ew] = 0.0 if value is None else np.asarray(value, np.float32)[:, None, None]
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
        preprocessing: the network's pixel convention (ImageNet-normalised RGB, or BGR 0-255 for the imported
            Open Model Zoo trunks); erased rectangles get its mean pixel.
    """

    input_size: tuple[int, int] = (256, 128)
    num_parts: int = 4
    part_mode: str = "pose"
    flip_probability: float = 0.5
    padding: int = 10
    erasing_probability: float = 0.5
    preprocessing: Preprocessing = field(default=IMAGENET_RGB)

    def __call__(
        self,
        image_bgr: np.ndarray,
        keypoints: Optional[np.ndarray],
        rng: np.random.Generator,
        flip: Optional[bool] = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment one image.

        Args:
            image_bgr: ``uint8 [h, w, 3]`` BGR image as read by OpenCV.
            keypoints: ``float32 [17, 3]`` COCO-17 keypoints in the image's pixels, or None.
            rng: random source.
            flip: force (True/False) or leave to chance (None).

        Returns:
            ``(image, boxes)``: ``float32 [3, H, W]`` in :attr:`preprocessing`'s convention and ``float32 [P, 4]``
            part boxes in pixels.
        """
        height, width = self.input_size
        h, w = image_bgr.shape[:2]
        image = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
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
            image = padded[dy : dy + height, dx : dx + width]
            if kp is not None:
                kp[:, 0] += pad - dx
                kp[:, 1] += pad - dy
                outside = (kp[:, 0] < 0) | (kp[:, 0] >= width) | (kp[:, 1] < 0) | (kp[:, 1] >= height)
                kp[outside, 2] = 0.0
        boxes = part_boxes(kp, height, width, self.num_parts, self.part_mode)
        tensor = self.preprocessing.apply(np.ascontiguousarray(image)[None])[0]
        if rng.random() < self.erasing_probability:
            random_erasing(tensor, rng, value=self.preprocessing.neutral_value())
        return tensor, boxes
