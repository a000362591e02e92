"""Site scale (issue 16): identity clustering of many tracks; with ``--index`` the search index of a synthetic
site (``scale_index.py``); with ``--database`` the same site stored in SQLite and PostgreSQL (``scale_db.py``).

    python benchmarks/scale.py                        # 1k, 2k, 4k (dense reference too), 20k and 100k tracks
    python benchmarks/scale.py --tracks 1000,100000 --no-dense
    python benchmarks/scale.py --feedback 100000      # feedback latency on a 100k-track database
    python benchmarks/scale.py --index 1000000,10000000
    python benchmarks/scale.py --database 1000000 --pg-url postgresql://user@host/empty_db

Synthetic tracks with the similarity structure measured on the lab cameras (tracks of one person about 0.87 alike,
of different people about 0.47; 1024-dimensional descriptors, as the shipped model gives), four tracks per person,
spread over 7 days on 100 cameras. Prints, per size: seconds of ``pipelines.matching.linkage.cluster_sparse`` as
``cluster_identities`` runs it (every pair up to 500 tracks, 30 nearest beyond), of the dense reference
``tests.reference_clustering.cluster_tracks`` where it fits, how alike the two partitions are (adjusted Rand index, 1
= identical) and how alike the sparse one
is to the true people. It does not pass or fail (target: 100,000 tracks in at most 60 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from math import comb
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_tracks(
    people: int, per_person: int = 4, cameras: int = 100, days: float = 7.0, dims: int = 1024, seed: int = 0
):
    """``(descriptors float32 [T, D], first, last float64 [T], cameras int64 [T], person int64 [T])``."""
    rng = np.random.default_rng(seed)

    def unit(shape):
        v = rng.normal(size=shape)
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    person = np.repeat(np.arange(people), per_person)
    x = 0.648 * unit((people, dims))[person] + 0.671 * unit(dims) + 0.36 * unit((len(person), dims))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    first = rng.uniform(0, days * 86400, size=people)[person] + rng.uniform(0, 600, size=len(person))
    last = first + rng.uniform(2, 30, size=len(person))
    return x, first, last, rng.integers(1, cameras + 1, size=len(person)).astype(np.int64), person


def adjusted_rand(a, b) -> float:
    """Adjusted Rand index of two labelings (Hubert and Arabie, 1985)."""
    n = len(a)
    together = sum(comb(v, 2) for v in Counter(zip(a, b)).values())
    in_a = sum(comb(v, 2) for v in Counter(a).values())
    in_b = sum(comb(v, 2) for v in Counter(b).values())
    expected = in_a * in_b / comb(n, 2)
    best = (in_a + in_b) / 2
    return 1.0 if best == expected else (together - expected) / (best - expected)


def _labels(clusters, n):
    out = np.empty(n, np.int64)
    for c, (members, _) in enumerate(clusters):
        out[members] = c
    return out.tolist()


def synthetic_database(path: Path, total: int) -> None:
    """A SQLite database holding ``total`` synthetic tracks (:func:`synthetic_tracks`) of 100 cameras, one video
    each, with descriptors (and one embedding, so that the model counts as used), written with Core inserts."""
    from sqlalchemy import insert

    from storage.database import open_database
    from storage.schema import Camera, Embedding, ReidModel, Sighting, Track, Video
    from storage.vectors import vector_to_bytes

    x, first, last, cameras, _ = synthetic_tracks(total // 4)
    db = open_database(path)
    with db.sessions.begin() as session:
        session.execute(insert(ReidModel), [{"id": 1, "name": "synthetic", "checkpoint_hash": "0", "dims": x.shape[1]}])
        session.execute(insert(Camera), [{"id": c, "name": f"cam{c}"} for c in range(1, 101)])
        session.execute(
            insert(Video),
            [
                {
                    "id": c,
                    "camera_id": c,
                    "path": f"/site/cam{c}.mp4",
                    "fingerprint": f"f{c}",
                    "fps": 10.0,
                    "frame_count": 1,
                    "width": 1,
                    "height": 1,
                    "duration_s": 7 * 86400,
                    "start_time": 1.0,
                    "analysis_fps": 5.0,
                    "status": "complete",
                }
                for c in range(1, 101)
            ],
        )
        session.execute(
            insert(Track),
            [
                {
                    "id": i + 1,
                    "video_id": int(cameras[i]),
                    "camera_id": int(cameras[i]),
                    "local_track_id": i + 1,
                    "first_time_s": float(first[i]) - 1.0,
                    "last_time_s": float(last[i]) - 1.0,
                    "first_frame": 0,
                    "last_frame": 0,
                    "num_sightings": 1,
                    "num_embeddings": 1,
                    "quality_sum": 1.0,
                    "descriptor": vector_to_bytes(x[i]),
                    "descriptor_model_id": 1,
                }
                for i in range(len(x))
            ],
        )
        session.execute(
            insert(Sighting),
            [
                {
                    "id": 1,
                    "track_id": 1,
                    "video_id": int(cameras[0]),
                    "frame_index": 0,
                    "time_s": 0.0,
                    "timestamp": 1.0,
                    "x1": 0.0,
                    "y1": 0.0,
                    "x2": 1.0,
                    "y2": 1.0,
                    "score": 1.0,
                }
            ],
        )
        session.execute(
            insert(Embedding), [{"sighting_id": 1, "model_id": 1, "dims": x.shape[1], "vector": vector_to_bytes(x[0])}]
        )
    db.close()


def feedback_latency(total: int) -> None:
    """Seconds of a reject and a confirm (with their re-clustering) on a database of ``total`` synthetic tracks."""
    import tempfile

    from pipelines.matching.feedback import confirm, reject
    from pipelines.matching.identities import cluster_identities
    from storage.database import open_database
    from storage.identities import load_identities

    path = Path(tempfile.mkdtemp()) / "site.db"
    t0 = time.perf_counter()
    synthetic_database(path, total)
    db = open_database(path)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = cluster_identities(db)
    full = time.perf_counter() - t0
    pair = next(i.track_ids[:2] for i in load_identities(db) if len(i.track_ids) >= 2)
    t0 = time.perf_counter()
    reject(db, *pair)
    rejected = time.perf_counter() - t0
    from common.errors import UsageError

    confirmed = float("nan")
    for other in (
        i.track_ids[0] for i in load_identities(db) if pair[0] not in i.track_ids and pair[1] not in i.track_ids
    ):
        t0 = time.perf_counter()
        try:  # a track of another identity whose confirmation is possible (not in view at the same time)
            confirm(db, pair[0], other)
        except UsageError:
            continue
        confirmed = time.perf_counter() - t0
        break
    db.close()
    print(
        f"feedback on {total:,} tracks ({report.identities:,} identities; database made in {made:.0f} s, full "
        f"clustering {full:.1f} s): reject {rejected:.2f} s, confirm {confirmed:.2f} s (each with its "
        f"re-clustering)"
    )


def main() -> None:
    from pipelines.matching.constraints import cannot_link
    from pipelines.matching.identities import EXACT_TRACKS
    from pipelines.matching.linkage import cluster_sparse
    from storage.vector_index import TrackTable
    from tests.reference_clustering import cluster_tracks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", default="1000,2000,4000,20000,100000")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense reference")
    parser.add_argument("--dense-limit", type=int, default=4000, help="largest size the dense reference runs on")
    parser.add_argument(
        "--feedback",
        type=int,
        default=0,
        metavar="TRACKS",
        help="also time a reject and a confirm on a SQLite database of this many tracks",
    )
    parser.add_argument(
        "--index",
        default="",
        metavar="ROWS[,ROWS]",
        help="the search part instead: synthetic sighting indexes of these sizes (scale_index.py)",
    )
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=Path("/tmp/reid-scale-index"),
        help="where the synthetic index is written (about 2.2 GB per million sightings)",
    )
    parser.add_argument(
        "--exact-bytes", type=int, default=-1, help="exact-scan limit of the scorer (default: the application's)"
    )
    parser.add_argument(
        "--database",
        type=int,
        default=0,
        metavar="ROWS",
        help="the database part instead: a synthetic site of ROWS sightings stored in SQLite "
        "(and PostgreSQL, --pg-url), searched end to end (scale_db.py)",
    )
    parser.add_argument("--pg-url", default="", help="an empty PostgreSQL database for --database")
    args = parser.parse_args()
    if args.database:
        from benchmarks.scale_db import run

        run(args.database, args.pg_url)
        return
    if args.index:
        from benchmarks.scale_index import run

        for rows in (int(r) for r in args.index.split(",")):
            run(rows, args.index_dir, exact_bytes=args.exact_bytes)
        return
    if args.feedback:
        feedback_latency(args.feedback)
    rows = []
    for total in (int(t) for t in args.tracks.split(",")):
        x, first, last, cameras, person = synthetic_tracks(total // 4)
        exact = len(x) <= EXACT_TRACKS
        t0 = time.perf_counter()
        sparse = cluster_sparse(
            x, first, last, cameras, set(), 0.75, k=len(x) - 1 if exact else 30, min_edge=-1.0 if exact else None
        )
        sparse_s = time.perf_counter() - t0
        dense_s, agreement = float("nan"), float("nan")
        if not args.no_dense and len(x) <= args.dense_limit:
            t0 = time.perf_counter()
            table = TrackTable(np.arange(len(x)), cameras, np.zeros(len(x), np.int64), first, last, x)
            dense = cluster_tracks(x @ x.T, cannot_link(table, set()), [], 0.75)
            dense_s = time.perf_counter() - t0
            agreement = adjusted_rand(_labels(dense, len(x)), _labels(sparse, len(x)))
        truth = adjusted_rand(person.tolist(), _labels(sparse, len(x)))
        rows.append((len(x), sparse_s, len(sparse), dense_s, agreement, truth))
        print(
            f"{len(x)} tracks: sparse {sparse_s:.1f} s ({len(sparse)} identities), dense {dense_s:.1f} s, "
            f"ARI sparse vs dense {agreement:.3f}, vs people {truth:.3f}",
            flush=True,
        )
    print()
    print(
        "| tracks | clustering (as cluster_identities runs it) | identities | dense reference | ARI vs dense | "
        "ARI vs people |"
    )
    print("|---|---|---|---|---|---|")
    for total, sparse_s, count, dense_s, agreement, truth in rows:
        dense_text = "-" if np.isnan(dense_s) else f"{dense_s:.1f} s"
        agree_text = "-" if np.isnan(agreement) else f"{agreement:.3f}"
        print(f"| {total:,} | {sparse_s:.1f} s | {count:,} | {dense_text} | {agree_text} | {truth:.3f} |")


if __name__ == "__main__":
    main()
