"""Evaluate any re-id encoder on a dataset's query/gallery split: features, distances, CMC/mAP, re-ranking.

Works with every ``models.encoders.ReIDEncoder`` (a reid-app checkpoint or any ONNX model), so two models are
compared on the same images, keypoints and protocol (``models.metrics``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from models.datasets import ReidDataset, ReidSample
from models.keypoint_cache import as_optional, read_image
from models.metrics import RankingResult, evaluate_ranking
from models.parts import PART_COUNTS, flip_boxes, part_boxes_from_keypoints
from models.reranking import k_reciprocal_rerank


def extract_features(
    encoder,
    samples: Sequence[ReidSample],
    keypoints: Optional[np.ndarray] = None,
    flip: bool = False,
    batch_size: int = 128,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> np.ndarray:
    """Embed dataset images.

    Args:
        encoder: a ``ReIDEncoder``.
        samples: images to embed.
        keypoints: ``float32 [N, 17, 3]`` per image (NaN rows: none found), or None for fixed part boxes.
        flip: average the embeddings of each image and its mirror image (part boxes mirrored too), then
            re-normalise.
        batch_size: images read per step.
        on_progress: called with ``(done, total)`` images.

    Returns:
        ``float32 [N, D]`` L2-normalised embeddings.

    Raises:
        DatasetError: an image cannot be read.
    """
    out = np.zeros((len(samples), encoder.dims), np.float32)
    for start in range(0, len(samples), batch_size):
        chunk = range(start, min(start + batch_size, len(samples)))
        images = [read_image(samples[i].path) for i in chunk]
        boxes = None
        if encoder.num_parts in PART_COUNTS:  # other counts are fixed stripes, placed by the network itself
            boxes = np.stack(
                [
                    part_boxes_from_keypoints(
                        as_optional(None if keypoints is None else keypoints[i]),
                        im.shape[0],
                        im.shape[1],
                        num_parts=encoder.num_parts,
                    )[0]
                    for i, im in zip(chunk, images)
                ]
            )
        feats = encoder.encode(images, boxes)
        if flip:
            mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in images]
            mirrored_boxes = (
                None if boxes is None else np.stack([flip_boxes(b, im.shape[1]) for b, im in zip(boxes, images)])
            )
            feats = feats + encoder.encode(mirrored, mirrored_boxes)
            feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        out[start : start + len(images)] = feats
        on_progress(start + len(images), len(samples))
    return out


def cosine_distances(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``float32 [Q, G]`` ``1 - cos`` between L2-normalised rows (``[Q, D]``, ``[G, D]``)."""
    return (1.0 - query @ gallery.T).astype(np.float32)


@dataclass
class EvaluationReport:
    """Outcome of :func:`evaluate_encoder`.

    Attributes:
        result: CMC/mAP with the encoder's distances.
        reranked: CMC/mAP after k-reciprocal re-ranking (None when not asked for).
        num_query, num_gallery: images evaluated.
        seconds: wall time of feature extraction.
    """

    result: RankingResult
    reranked: Optional[RankingResult]
    num_query: int
    num_gallery: int
    seconds: float


def evaluate_encoder(
    encoder,
    dataset: ReidDataset,
    query_keypoints: Optional[np.ndarray] = None,
    gallery_keypoints: Optional[np.ndarray] = None,
    flip: bool = False,
    rerank: bool = False,
    max_rank: int = 20,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> EvaluationReport:
    """CMC and mAP of ``encoder`` on the dataset's query/gallery split under the standard protocol.

    Args:
        encoder: a ``ReIDEncoder``.
        dataset: the dataset (its ``query`` and ``gallery``).
        query_keypoints, gallery_keypoints: ``float32 [N, 17, 3]`` or None (fixed part boxes).
        flip: flip averaging of the embeddings.
        rerank: also report k-reciprocal re-ranking (``models.reranking``, the paper's k1=20, k2=6, lambda=0.3).
        max_rank: CMC length.
        on_progress: ``(done, total)`` over query + gallery images.

    Returns:
        An :class:`EvaluationReport`.

    Raises:
        DatasetError: an image cannot be read.
    """
    total = len(dataset.query) + len(dataset.gallery)
    t0 = time.perf_counter()
    query = extract_features(
        encoder, dataset.query, query_keypoints, flip, on_progress=lambda d, _t: on_progress(d, total)
    )
    gallery = extract_features(
        encoder,
        dataset.gallery,
        gallery_keypoints,
        flip,
        on_progress=lambda d, _t: on_progress(len(dataset.query) + d, total),
    )
    seconds = time.perf_counter() - t0
    q_pids = np.array([s.pid for s in dataset.query])
    q_cams = np.array([s.camid for s in dataset.query])
    g_pids = np.array([s.pid for s in dataset.gallery])
    g_cams = np.array([s.camid for s in dataset.gallery])
    distances = cosine_distances(query, gallery)
    result = evaluate_ranking(distances, q_pids, g_pids, q_cams, g_cams, max_rank)
    reranked = None
    if rerank:
        reranked_distances = k_reciprocal_rerank(
            2 * distances, 2 * cosine_distances(query, query), 2 * cosine_distances(gallery, gallery)
        )
        reranked = evaluate_ranking(reranked_distances, q_pids, g_pids, q_cams, g_cams, max_rank)
    return EvaluationReport(result, reranked, len(query), len(gallery), seconds)
