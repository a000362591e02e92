"""Montage PNGs of the longest identities in a reid-app SQLite database, to look at what tracking and identity
clustering joined: one PNG per identity, a row per track (its stored thumbnails in time order, evenly sampled),
each row labelled with the track id and its time range. Tracks in no identity are shown as their own.

    python benchmarks/identity_montage.py DB --out DIR [--top 5] [--per-track 8]
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import cv2
import numpy as np

CELL = (48, 112)  # thumbnail cell in pixels (width, height)


def _cell(blob: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
    w, h = CELL
    canvas = np.full((h, w, 3), 40, np.uint8)
    if image is None:
        return canvas
    scale = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(image, (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale))))
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def montage(con: sqlite3.Connection, tracks: list[int], per_track: int) -> np.ndarray:
    """``uint8 [H, W, 3]``: one labelled row of up to ``per_track`` thumbnails per track."""
    rows = []
    for track in tracks:
        shots = con.execute(
            "SELECT thumbnail, time_s FROM sightings WHERE track_id = ? AND thumbnail IS NOT NULL ORDER BY time_s",
            (track,),
        ).fetchall()
        first, last = con.execute("SELECT first_time_s, last_time_s FROM tracks WHERE id = ?", (track,)).fetchone()
        picks = [shots[int(i)] for i in np.linspace(0, len(shots) - 1, min(per_track, len(shots)))] if shots else []
        label = np.full((CELL[1], 150, 3), 255, np.uint8)
        cv2.putText(label, f"track {track}", (4, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
        cv2.putText(label, f"{first:.1f}-{last:.1f} s", (4, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        cells = [_cell(blob) for blob, _ in picks] + [np.full((CELL[1], CELL[0], 3), 255, np.uint8)] * (
            per_track - len(picks)
        )
        rows.append(np.hstack([label, *cells]))
    return np.vstack(rows) if rows else np.zeros((1, 1, 3), np.uint8)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs (made if missing)")
    parser.add_argument("--top", type=int, default=5, help="identities, longest (most sightings) first")
    parser.add_argument("--per-track", type=int, default=8, help="thumbnails per track")
    args = parser.parse_args(argv)
    if not args.db.is_file():
        raise SystemExit(f"{args.db}: no such database file")
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    groups = con.execute(
        "SELECT coalesce(it.identity_id, -t.id), group_concat(t.id), sum(t.num_sightings) FROM tracks t "
        "LEFT JOIN identity_tracks it ON it.track_id = t.id WHERE NOT t.static "
        "GROUP BY coalesce(it.identity_id, -t.id) ORDER BY 3 DESC LIMIT ?",
        (args.top,),
    ).fetchall()
    args.out.mkdir(parents=True, exist_ok=True)
    for rank, (identity, tracks, sightings) in enumerate(groups, 1):
        ids = sorted(int(t) for t in tracks.split(","))
        ids.sort(key=lambda t: con.execute("SELECT first_time_s FROM tracks WHERE id = ?", (t,)).fetchone()[0])
        name = f"identity_{identity}" if identity > 0 else f"track_{-identity}"
        path = args.out / f"{rank:02d}_{name}.png"
        cv2.imwrite(str(path), montage(con, ids, args.per_track))
        print(f"{path}: {len(ids)} track(s), {sightings} sightings")


if __name__ == "__main__":
    main()
