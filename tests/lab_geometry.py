"""Ground truth for the four lab cameras from their calibration: which tracks of two cameras show one person.

The cameras are synchronised (same frame index = same instant) and calibrated (intrinsics, distortion, and the
world-to-camera transform in ``calib_camN.json``). A person's foot point (bottom centre of the box) is undistorted
and mapped onto the floor plane z = 0 by the inverse of the homography ``K [r1 r2 t]``. Two tracks of different
cameras are the same person when, over the frames both were seen in, their floor positions lie within
:data:`SAME_METRES` (median); different when beyond :data:`DIFFERENT_METRES`; unknown otherwise or with fewer than
:data:`MIN_COMMON_FRAMES` common frames. Measured on the lab footage: matching tracks lie 0.1-0.45 m apart, others
more than 0.9 m.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np

SAME_METRES = 0.5
DIFFERENT_METRES = 0.9
MIN_COMMON_FRAMES = 3


def _floor_homography(calib_file: Path):
    data = json.loads(calib_file.read_text())
    k = np.array(data["intrinsic"]["doubles"], np.float64).reshape(3, 3)
    dist = np.array(data["distortion"]["doubles"], np.float64)
    world_to_camera = np.array(data["extrinsic"][0]["tf"]["doubles"], np.float64).reshape(4, 4)
    h = k @ np.column_stack([world_to_camera[:3, 0], world_to_camera[:3, 1], world_to_camera[:3, 3]])
    return k, dist, np.linalg.inv(h)


def floor_positions(db_path: Path, lab_dir: Path) -> dict[int, tuple[str, dict[int, np.ndarray]]]:
    """Track id -> (camera name, {frame index: floor position ``float64 [2]`` in metres})."""
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute(
            "SELECT s.track_id, c.name, s.frame_index, s.x1, s.x2, s.y2 FROM sightings s "
            "JOIN tracks t ON t.id = s.track_id JOIN cameras c ON c.id = t.camera_id"
        ).fetchall()
    finally:
        con.close()
    calib = {}
    tracks: dict[int, tuple[str, dict[int, np.ndarray]]] = {}
    for track_id, camera, frame, x1, x2, y2 in rows:
        if camera not in calib:
            calib[camera] = _floor_homography(lab_dir / f"calib_{camera}.json")
        k, dist, inverse = calib[camera]
        foot = cv2.undistortPoints(np.array([[[(x1 + x2) / 2, y2]]], np.float64), k, dist, P=k)[0, 0]
        w = inverse @ np.array([foot[0], foot[1], 1.0])
        tracks.setdefault(track_id, (camera, {}))[1][frame] = w[:2] / w[2]
    return tracks


def same_person_pairs(db_path: Path, lab_dir: Path) -> dict[tuple[int, int], bool]:
    """``(track_a, track_b)`` with ``a < b``, of different cameras -> same person?  Unknown pairs are absent."""
    tracks = floor_positions(db_path, lab_dir)
    ids = sorted(tracks)
    labels = {}
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            (cam_a, pos_a), (cam_b, pos_b) = tracks[a], tracks[b]
            common = sorted(set(pos_a) & set(pos_b))
            if cam_a == cam_b or len(common) < MIN_COMMON_FRAMES:
                continue
            d = float(np.median([np.linalg.norm(pos_a[f] - pos_b[f]) for f in common]))
            if d <= SAME_METRES:
                labels[(a, b)] = True
            elif d >= DIFFERENT_METRES:
                labels[(a, b)] = False
    return labels
