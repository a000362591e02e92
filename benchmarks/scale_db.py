"""Site scale, database part (run through ``benchmarks/scale.py --database ROWS [--pg-url URL]``): the synthetic
site of ``scale_index.py`` stored as a real reid-app database (SQLite, and PostgreSQL when a URL is given): every
sighting with a 1.75 KB thumbnail and 204 B of keypoints (the lab cameras' averages) and its 1024-d embedding,
tracks with descriptors, one video per camera and hour, written with Core bulk inserts.

Prints per database: rows and size; seconds for a first search in a new process with no saved index (it reads
every embedding and saves the index), for the first search once the index is saved (it opens it: the 2-s target
for 1M), then ``reid-app search --track`` p50/p95 through ``pipelines.matching.search.Searcher`` (the default ``mean``
ranking and per-sighting), refresh, database reads and audit record included.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.scale_index import CAMERAS, DIMS, PER_TRACK, SyntheticSite

THUMBNAIL = bytes(1750)
KEYPOINTS = bytes(204)


def write_database(location: str, site: SyntheticSite, chunk_rows: int = 50_000) -> float:
    """Store ``site`` in the (new, empty) database at ``location``; returns seconds taken."""
    from sqlalchemy import insert

    from storage.database import open_database
    from storage.schema import Camera, Embedding, ReidModel, Sighting, Track, Video

    started = time.perf_counter()
    db = open_database(location)
    videos = site.tracks // site.tracks_per_video + 1
    with db.engine.begin() as con:
        con.execute(insert(ReidModel), [{"id": 1, "name": "synthetic", "checkpoint_hash": "0", "dims": DIMS}])
        con.execute(insert(Camera), [{"id": c, "name": f"cam{c}"} for c in range(1, CAMERAS + 1)])
        con.execute(
            insert(Video),
            [
                {
                    "id": v + 1,
                    "camera_id": v % CAMERAS + 1,
                    "path": f"/site/{v}.mp4",
                    "fingerprint": f"{v:064d}",
                    "fps": 10.0,
                    "frame_count": 36000,
                    "width": 1920,
                    "height": 1080,
                    "duration_s": 3600.0,
                    "start_time": 1.7e9 + v * 3600.0,
                    "analysis_fps": 5.0,
                    "status": "complete",
                    "model_id": 1,
                }
                for v in range(videos)
            ],
        )
    rng = np.random.default_rng(site.seed + 1)
    for start in range(0, site.rows, chunk_rows - chunk_rows % PER_TRACK):
        stop = min(site.rows, start + chunk_rows - chunk_rows % PER_TRACK)
        x = site.chunk(start, stop, rng)
        tracks = np.arange(start // PER_TRACK, stop // PER_TRACK)
        means = x.reshape(-1, PER_TRACK, DIMS).mean(axis=1)
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        with db.engine.begin() as con:
            con.execute(
                insert(Track),
                [
                    {
                        "id": int(t) + 1,
                        "video_id": int(t // site.tracks_per_video) + 1,
                        "camera_id": int(t // site.tracks_per_video) % CAMERAS + 1,
                        "local_track_id": int(t) + 1,
                        "first_time_s": 0.0,
                        "last_time_s": float(PER_TRACK),
                        "first_frame": 0,
                        "last_frame": 200,
                        "num_sightings": PER_TRACK,
                        "num_embeddings": PER_TRACK,
                        "quality_sum": float(PER_TRACK),
                        "descriptor": m.astype("<f4").tobytes(),
                        "descriptor_model_id": 1,
                    }
                    for t, m in zip(tracks, means)
                ],
            )
            rows = np.arange(start, stop)
            con.execute(
                insert(Sighting),
                [
                    {
                        "id": int(r) + 1,
                        "track_id": int(r // PER_TRACK) + 1,
                        "video_id": int(r // PER_TRACK // site.tracks_per_video) + 1,
                        "frame_index": int(r % PER_TRACK) * 10,
                        "time_s": float(r % PER_TRACK),
                        "timestamp": 1.7e9 + float(r % PER_TRACK),
                        "x1": 10.0,
                        "y1": 20.0,
                        "x2": 60.0,
                        "y2": 140.0,
                        "score": 0.9,
                        "quality": 0.8,
                        "keypoints": KEYPOINTS,
                        "thumbnail": THUMBNAIL,
                    }
                    for r in rows
                ],
            )
            con.execute(
                insert(Embedding),
                [
                    {"sighting_id": int(r) + 1, "model_id": 1, "dims": DIMS, "vector": v.astype("<f4").tobytes()}
                    for r, v in zip(rows, x)
                ],
            )
    db.close()
    return time.perf_counter() - started


def database_bytes(location: str) -> int:
    """Bytes the database takes (the SQLite file with its WAL, or ``pg_database_size``)."""
    if "://" not in location:
        return sum(p.stat().st_size for p in Path(location).parent.glob(Path(location).name + "*"))
    from sqlalchemy import text

    from storage.database import open_database

    db = open_database(location)
    try:
        with db.engine.connect() as con:
            return int(con.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        db.close()


def _first_search(location: str, index_root: Path) -> float:
    """Seconds of a new searcher's first search (load or open the index, then search)."""
    from pipelines.matching.search import Searcher, SearchOptions
    from pipelines.matching.similarity import make_scorer
    from storage.database import open_database

    db = open_database(location)
    try:
        t0 = time.perf_counter()
        Searcher(db, make_scorer("auto"), index_root=index_root).by_track(1, SearchOptions(audit=False))
        return time.perf_counter() - t0
    finally:
        db.close()


def _search_times(location: str, index_root: Path, queries: int, per_track: bool) -> tuple[float, float]:
    from pipelines.matching.search import Searcher, SearchOptions
    from pipelines.matching.similarity import make_scorer
    from storage.database import open_database

    db = open_database(location)
    try:
        searcher = Searcher(db, make_scorer("auto"), index_root=index_root)
        tracks = np.random.default_rng(5).choice(len(searcher.index(1).tracks), queries, replace=False) + 1
        searcher.by_track(int(tracks[0]), SearchOptions(per_track=per_track))  # warm: the approximate index
        times = []
        for t in tracks:
            t0 = time.perf_counter()
            searcher.by_track(int(t), SearchOptions(per_track=per_track))
            times.append((time.perf_counter() - t0) * 1e3)
        return float(np.percentile(times, 50)), float(np.percentile(times, 95))
    finally:
        db.close()


def run(rows: int, pg_url: str = "", queries: int = 50) -> None:
    """The database part for ``rows`` sightings, in SQLite (and PostgreSQL at ``pg_url`` when given)."""
    site = SyntheticSite(rows)
    folder = Path(tempfile.mkdtemp(prefix="reid-scale-db-"))
    locations = [("SQLite", str(folder / "site.db"))] + ([("PostgreSQL", pg_url)] if pg_url else [])
    try:
        for name, location in locations:
            written = write_database(location, site)
            size = database_bytes(location) / 1e9
            index_root = folder / f"index-{name}"
            cold = _first_search(location, index_root)
            warm = _first_search(location, index_root)
            track_p50, track_p95 = _search_times(location, index_root, queries, True)
            sight_p50, sight_p95 = _search_times(location, index_root, queries, False)
            print(
                f"{name}: {site.rows:,} sightings with embeddings, {site.tracks:,} tracks; written in {written:.0f} s, "
                f"{size:.1f} GB; first search reading every embedding {cold:.1f} s, first search opening the "
                f"saved index {warm:.2f} s; search by track p50 {track_p50:.0f} ms p95 {track_p95:.0f} ms "
                f"(per sighting: p50 {sight_p50:.0f} ms, p95 {sight_p95:.0f} ms)",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
