"""Search latency, index memory and index load time for 10k, 100k and 1M stored embeddings.

    python benchmarks/search.py                                 # 10k, 100k, 1M x 1024-D on the CPU
    python benchmarks/search.py --device cuda                   # and on the GPU
    python benchmarks/search.py --sizes 10000,100000 --faiss    # add the optional FAISS IVF index

A synthetic database of the real layout is written (and grown from one size to the next) with raw SQLite inserts:
8 cameras, tracks of 50 sightings, embeddings of ``--dim`` (1024 = the joint-loss network's descriptor) drawn
around 1 identity centre per 200 sightings and L2-normalised. For each size it reports:

* load: seconds for ``EmbeddingIndex.load`` to read every embedding from SQLite (the file was just written, so it
  is in the OS page cache, as it is for a database in daily use);
* memory: bytes held by the index, and the process's RSS growth;
* latency per query (median and 95th percentile of ``--queries`` queries, after a warm-up), end to end through
  ``pipelines.matching.search.Searcher`` with the audit log off:
  - ``max``: sighting-level search over all N embeddings (``track_similarity="max"``), one result per track;
  - ``max+filters``: the same limited to 4 cameras and half the time span;
  - ``mean``: track-level search over the track descriptors (N / 50 rows);
  - ``mean+rerank``: with k-reciprocal re-ranking of the best 100 tracks.

Targets (issue 4): 1M sightings answer in at most 100 ms on a 2-core CPU and at most 5 ms on an H200; the index
loads 1M embeddings in at most 10 s. This prints numbers; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAMERAS = 8
SIGHTINGS_PER_TRACK = 50
SIGHTINGS_PER_IDENTITY = 200


def _rss() -> int:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss


def grow_database(path: Path, total: int, dim: int, rng: np.random.Generator) -> float:
    """Append synthetic tracks until ``path`` holds ``total`` embeddings; returns seconds spent."""
    from storage.database import open_database

    open_database(path).close()  # creates the schema
    started = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    have = con.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    if have >= total:
        con.close()
        return 0.0
    if con.execute("SELECT count(*) FROM models").fetchone()[0] == 0:
        con.execute(
            "INSERT INTO models (id, name, checkpoint_hash, dims, source, created_at) "
            "VALUES (1, 'synthetic', 'bench', ?, '', '2026-01-01')",
            (dim,),
        )
        for c in range(1, CAMERAS + 1):
            con.execute("INSERT INTO cameras (id, name, created_at) VALUES (?, ?, '2026-01-01')", (c, f"cam{c}"))
    video = con.execute("SELECT coalesce(max(id), 0) FROM videos").fetchone()[0]
    track = con.execute("SELECT coalesce(max(id), 0) FROM tracks").fetchone()[0]
    sighting = con.execute("SELECT coalesce(max(id), 0) FROM sightings").fetchone()[0]
    per_video = 20_000
    while have < total:
        n = min(per_video, total - have)
        video += 1
        camera = (video - 1) % CAMERAS + 1
        start = 1_700_000_000.0 + (video // CAMERAS) * 3600.0
        con.execute(
            "INSERT INTO videos (id, camera_id, path, fingerprint, fps, frame_count, width, height, "
            "duration_s, start_time, analysis_fps, frames_analysed, status, model_id, ingested_at) "
            "VALUES (?, ?, ?, ?, 10, 36000, 1280, 720, 3600, ?, 5, 18000, 'complete', 1, '2026-01-01')",
            (video, camera, f"/synthetic/{video}.mp4", f"{video:064d}", start),
        )
        centres = rng.standard_normal((max(1, n // SIGHTINGS_PER_IDENTITY), dim)).astype(np.float32)
        owner = np.repeat(np.arange(len(centres)), SIGHTINGS_PER_IDENTITY)[:n]
        owner = np.pad(owner, (0, n - len(owner)), mode="edge")
        vectors = centres[owner] + 0.8 * rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        tracks, sightings, embeddings = [], [], []
        for first in range(0, n, SIGHTINGS_PER_TRACK):
            track += 1
            rows = vectors[first : first + SIGHTINGS_PER_TRACK]
            t0 = float(rng.uniform(0, 3500))
            descriptor = rows.mean(axis=0)
            descriptor /= np.linalg.norm(descriptor)
            tracks.append(
                (
                    track,
                    video,
                    camera,
                    track,
                    t0,
                    t0 + len(rows) * 0.2,
                    int(t0 * 10),
                    int(t0 * 10) + 2 * len(rows),
                    len(rows),
                    len(rows),
                    float(len(rows)),
                    descriptor.astype("<f4").tobytes(),
                    1,
                )
            )
            for k, row in enumerate(rows):
                sighting += 1
                t = t0 + 0.2 * k
                sightings.append((sighting, track, video, int(t * 10), t, start + t, 10.0, 20.0, 60.0, 140.0, 0.9, 0.8))
                embeddings.append((sighting, sighting, 1, dim, row.astype("<f4").tobytes()))
        con.executemany(
            "INSERT INTO tracks (id, video_id, camera_id, local_track_id, first_time_s, last_time_s, "
            "first_frame, last_frame, num_sightings, num_embeddings, quality_sum, descriptor, "
            "descriptor_model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tracks,
        )
        con.executemany(
            "INSERT INTO sightings (id, track_id, video_id, frame_index, time_s, timestamp, x1, y1, "
            "x2, y2, score, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sightings,
        )
        con.executemany(
            "INSERT INTO embeddings (id, sighting_id, model_id, dims, vector) VALUES (?, ?, ?, ?, ?)", embeddings
        )
        con.commit()
        have += n
        print(f"  database: {have:,} embeddings", end="\r", flush=True)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    print()
    return time.perf_counter() - started


def _latency(fn, queries: int) -> tuple[float, float]:
    fn(0)  # warm-up: uploads, caches
    times = []
    for i in range(queries):
        started = time.perf_counter()
        fn(i + 1)
        times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]


def measure(path: Path, device: str, queries: int, use_faiss: bool) -> dict:
    from pipelines.matching.search import Searcher, SearchFilters, SearchOptions
    from pipelines.matching.similarity import FaissScorer, TorchScorer, copy_rows
    from storage.database import open_database
    from storage.vector_index import EmbeddingIndex

    db = open_database(path, create=False)
    gc.collect()
    rss = _rss()
    started = time.perf_counter()
    index = EmbeddingIndex.load(db, 1, db_dims(path), copy_rows=copy_rows)
    load_s = time.perf_counter() - started
    out = {
        "rows": index.size,
        "tracks": len(index.tracks),
        "load_s": load_s,
        "index_mb": index.nbytes() / 2**20,
        "rss_mb": (_rss() - rss) / 2**20,
    }
    rng = np.random.default_rng(1)
    picks = rng.integers(0, index.size, queries + 1)
    query_vectors = index.matrix[picks].astype(np.float32)
    middle = float(np.median(index.timestamps))
    cams = [f"cam{c}" for c in range(1, CAMERAS // 2 + 1)]
    scorers = {f"torch-{device}": TorchScorer(device)}
    if use_faiss:
        scorers["faiss-ivf"] = FaissScorer()
    for name, scorer in scorers.items():
        searcher = Searcher(db, scorer)
        searcher._indexes[1] = index
        settings = {
            "max": (SearchOptions(top_k=10, track_similarity="max", audit=False), SearchFilters()),
            "max+filters": (
                SearchOptions(top_k=10, track_similarity="max", audit=False),
                SearchFilters(cameras=cams, after=middle),
            ),
            "mean": (SearchOptions(top_k=10, track_similarity="mean", audit=False), SearchFilters()),
            "mean+rerank": (
                SearchOptions(top_k=10, track_similarity="mean", rerank=True, audit=False),
                SearchFilters(),
            ),
        }
        if name.startswith("faiss"):
            started = time.perf_counter()
            scorer._index(index)
            out[f"{name} build_s"] = time.perf_counter() - started
            settings = {"max": settings["max"]}
            exact = TorchScorer("cpu")
            hits = []
            for q in query_vectors[:20]:
                truth = set(exact.top(index, q[None], None, 10)[0].tolist())
                hits.append(len(truth & set(scorer.top(index, q[None], None, 10)[0].tolist())) / 10)
            out[f"{name} recall@10"] = float(np.mean(hits))
        for label, (options, filters) in settings.items():
            out[f"{name} {label}"] = _latency(
                lambda i, o=options, f=filters: searcher.by_vector(query_vectors[i], 1, o, f), queries
            )
    db.close()
    return out


def db_dims(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT dims FROM models WHERE id = 1").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="embedding counts, comma-separated")
    parser.add_argument("--dim", type=int, default=1024, help="embedding dimension (1024: the joint-loss network)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (torch scoring)")
    parser.add_argument("--queries", type=int, default=20, help="queries timed per setting")
    parser.add_argument("--faiss", action="store_true", help="also measure the FAISS IVF index (needs faiss-cpu)")
    parser.add_argument("--db", type=Path, default=None, help="database file to grow (default: a temporary one)")
    args = parser.parse_args()
    import torch

    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = None
    if args.db is None:
        workdir = tempfile.TemporaryDirectory(prefix="reid-bench-")
        args.db = Path(workdir.name) / "bench.db"
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{os.cpu_count()}-core CPU"
    print(
        f"search benchmark: {args.dim}-D embeddings, device {args.device} ({device_name}), torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads"
    )
    rng = np.random.default_rng(0)
    reports = []
    for size in sizes:
        grow_s = grow_database(args.db, size, args.dim, rng)
        print(f"  wrote up to {size:,} embeddings in {grow_s:.1f} s ({args.db.stat().st_size / 2**30:.2f} GiB)")
        report = measure(args.db, args.device, args.queries, args.faiss)
        reports.append(report)
        print(f"  {size:,}: " + ", ".join(f"{k}={v}" for k, v in report.items() if not isinstance(v, tuple)))
    keys = [k for k in reports[0] if isinstance(reports[0][k], tuple)]
    print()
    print(
        f"{'embeddings':>11}{'tracks':>8}{'load s':>8}{'index MiB':>10}{'RSS MiB':>9}  "
        + "".join(f"{k + ' ms p50/p95':>34}" for k in keys)
    )
    for r in reports:
        print(
            f"{r['rows']:>11,}{r['tracks']:>8,}{r['load_s']:>8.2f}{r['index_mb']:>10.0f}{r['rss_mb']:>9.0f}  "
            + "".join(f"{f'{r[k][0]:.1f} / {r[k][1]:.1f}':>34}" for k in keys)
        )
    for r in reports:
        extra = {k: v for k, v in r.items() if "recall" in k or "build" in k}
        if extra:
            print(f"{r['rows']:>11,}: " + ", ".join(f"{k} {v:.2f}" for k, v in extra.items()))
    if workdir is not None:
        workdir.cleanup()


if __name__ == "__main__":
    main()
