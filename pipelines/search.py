"""Cross-camera search over stored track descriptors by cosine similarity.

A track's descriptor is the quality-weighted mean of its sighting embeddings, L2-normalised (see
``storage.repository.VideoWriter``), so the cosine similarity of two tracks is the dot product of their
descriptors. Only tracks made by the query's model are compared (embeddings of different models live in different
vector spaces), and only tracks of other cameras are returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from models.encoders import ReIDEncoder
from models.parts import stripe_boxes
from reid_app.errors import UsageError
from storage.database import Database
from storage.repository import get_sighting_embedding, get_tracks, list_models, load_track_descriptors


@dataclass
class SearchResult:
    """One ranked match.

    Attributes:
        track_id: database id of the matching track.
        camera: its camera name.
        local_track_id: the tracker's id within that camera's video.
        first_timestamp, last_timestamp: when the track is visible, seconds since the epoch.
        num_sightings: sightings in the track.
        score: cosine similarity in ``[-1, 1]`` (higher is more alike).
    """

    track_id: int
    camera: str
    local_track_id: int
    first_timestamp: float
    last_timestamp: float
    num_sightings: int
    score: float


def search_by_vector(db: Database, vector: np.ndarray, model_id: int, top_k: int = 10,
                     exclude_camera_id: Optional[int] = None, exclude_track_id: Optional[int] = None
                     ) -> list[SearchResult]:
    """Rank stored tracks by cosine similarity to a query vector.

    Args:
        vector: ``float32 [D]`` query embedding (normalised here).
        model_id: the model whose track descriptors are compared.
        top_k: number of results (>= 1).
        exclude_camera_id: drop tracks of this camera (the query's own).
        exclude_track_id: drop this track (the query itself).

    Returns:
        Up to ``top_k`` results, best first.
    """
    gallery = load_track_descriptors(db, model_id)
    if gallery.matrix.shape[0] == 0:
        return []
    q = np.asarray(vector, np.float32)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    if q.shape[0] != gallery.matrix.shape[1]:
        raise UsageError(f"query has {q.shape[0]} dimensions but the stored descriptors have "
                         f"{gallery.matrix.shape[1]}")
    scores = gallery.matrix @ q
    keep = np.ones(len(scores), bool)
    if exclude_camera_id is not None:
        keep &= gallery.camera_ids != exclude_camera_id
    if exclude_track_id is not None:
        keep &= gallery.track_ids != exclude_track_id
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(-scores[idx], kind="stable")[:top_k]]
    info = get_tracks(db, gallery.track_ids[order].tolist())
    results = []
    for i in order:
        t = info[int(gallery.track_ids[i])]
        results.append(SearchResult(t.id, t.camera, t.local_track_id, t.first_timestamp, t.last_timestamp,
                                    t.num_sightings, float(scores[i])))
    return results


def search_by_track(db: Database, track_id: int, top_k: int = 10) -> list[SearchResult]:
    """Tracks of other cameras most like track ``track_id``.

    Raises:
        UsageError: no such track, or the track has no descriptor (none of its sightings passed the quality gate).
    """
    info = get_tracks(db, [track_id]).get(track_id)
    if info is None:
        raise UsageError(f"track {track_id} does not exist in {db.location}")
    if info.descriptor is None:
        raise UsageError(f"track {track_id} has no embedding (none of its crops passed the quality gate); "
                         f"choose another track")
    return search_by_vector(db, info.descriptor, info.descriptor_model_id, top_k,
                            exclude_camera_id=info.camera_id, exclude_track_id=track_id)


def search_by_sighting(db: Database, sighting_id: int, top_k: int = 10) -> list[SearchResult]:
    """Tracks of other cameras most like sighting ``sighting_id``'s embedding.

    Raises:
        UsageError: no such sighting, or it has no embedding (it was not sampled for encoding).
    """
    try:
        emb = get_sighting_embedding(db, sighting_id)
    except LookupError:
        raise UsageError(f"sighting {sighting_id} does not exist in {db.location}") from None
    if emb is None:
        raise UsageError(f"sighting {sighting_id} has no embedding (it was not sampled for re-id); search by its "
                         f"track instead")
    return search_by_vector(db, emb.vector, emb.model_id, top_k, exclude_camera_id=emb.camera_id)


def search_by_image(db: Database, image_path: str | Path, encoder: ReIDEncoder, top_k: int = 10
                    ) -> list[SearchResult]:
    """Tracks of every camera most like a person image (a crop of one person, any size).

    Raises:
        UsageError: unreadable image, or the database holds no embeddings of ``encoder``'s model.
    """
    image = cv2.imread(str(image_path))
    if image is None:
        raise UsageError(f"image {image_path} could not be read (missing or not an image file)")
    models = [m for m in list_models(db) if m.name == encoder.name and m.checkpoint_hash == encoder.checkpoint_hash]
    if not models:
        raise UsageError(f"{db.location} holds no embeddings made by re-id model {encoder.name}; pass the --reid "
                         f"weights that were used for ingest")
    boxes = stripe_boxes(image.shape[0], image.shape[1])[None]
    vector = encoder.encode([image], boxes)[0]
    return search_by_vector(db, vector, models[0].id, top_k)
