"""Site scale, search part (run through ``benchmarks/scale.py --index N``): a synthetic site's sighting index of N
rows at the real descriptor size (1024), written straight into an index folder the way ``reid-app`` persists one.

Synthetic sightings: 20 per track, 4 tracks per person, 100 cameras, one video per camera and hour. Cosine
similarities are set by four nearly orthogonal unit components (shared 0.45, person 0.35, track 0.10, sighting
0.10 of the squared norm): sightings of one track about 0.9 alike, of one person 0.8, of different people 0.45,
as measured on the lab cameras. People's own components vary mostly along 32 appearance directions, so that the
strangers nearest a person are graded. Queries are new sightings of existing people (a new track of theirs).

Prints: seconds to write the folder; to open it (what a new process pays before its first search); to build the
IVF-PQ index (train + add) and to load it saved; sighting-level search p50/p95 (``AnnScorer.top``, 10 results,
exact re-scoring included) and recall@10 against an exact scan; the same for ranking the tracks by descriptor
(the default ``mean`` track search). It does not pass or fail (targets: open a 1M index in at most 2 s; search
10M in at most 100 ms p50 with recall@10 at least 0.95).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

DIMS = 1024
PER_TRACK, PER_PERSON, CAMERAS = 20, 4, 100
LATENT = 32  # appearance directions people vary along
_SHARED, _PERSON, _TRACK, _SIGHTING = np.sqrt([0.45, 0.35, 0.10, 0.10])


def _unit(rng, shape) -> np.ndarray:
    v = rng.standard_normal(shape, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class SyntheticSite:
    """Generator of the synthetic site's sightings (see the module docstring)."""

    def __init__(self, rows: int, seed: int = 0):
        self.rows = rows - rows % PER_TRACK
        self.tracks = self.rows // PER_TRACK
        self.people = max(1, self.tracks // PER_PERSON)
        rng = np.random.default_rng(seed)
        self.shared = _unit(rng, DIMS)
        # people vary along a few appearance directions (clothing, build) and a little in every direction, so a
        # person's nearest strangers are graded as in real galleries instead of all equally far
        appearance = _unit(rng, (LATENT, DIMS)).T @ rng.standard_normal((LATENT, self.people), dtype=np.float32)
        own = _unit(rng, (self.people, DIMS))
        centres = appearance.T / np.linalg.norm(appearance, axis=0)[:, None] * 0.8 + 0.6 * own
        self.centres = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float16)
        self.seed = seed
        hours = 7 * 24
        self.tracks_per_video = max(1, self.tracks // (CAMERAS * hours))

    def person_of(self, tracks: np.ndarray) -> np.ndarray:
        return tracks % self.people

    def chunk(self, start: int, stop: int, rng) -> np.ndarray:
        """``float32 [stop - start, D]`` sightings ``start:stop`` (whole tracks: both multiples of 20)."""
        tracks = np.arange(start // PER_TRACK, stop // PER_TRACK)
        offsets = _unit(rng, (len(tracks), DIMS))
        base = (
            _SHARED * self.shared + _PERSON * self.centres[self.person_of(tracks)].astype(np.float32) + _TRACK * offsets
        )
        x = np.repeat(base, PER_TRACK, axis=0) + _SIGHTING * _unit(rng, (stop - start, DIMS))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def query_people(self, count: int, seed: int = 99) -> np.ndarray:
        """The people :meth:`queries` shows, ``int64 [count]``."""
        return np.random.default_rng(seed).choice(self.people, count, replace=False)

    def queries(self, count: int, seed: int = 99) -> np.ndarray:
        """``float32 [count, D]`` new sightings of existing people (a track of theirs the site does not hold)."""
        rng = np.random.default_rng(seed)
        people = rng.choice(self.people, count, replace=False)
        x = (
            _SHARED * self.shared
            + _PERSON * self.centres[people].astype(np.float32)
            + _TRACK * _unit(rng, (count, DIMS))
            + _SIGHTING * _unit(rng, (count, DIMS))
        )
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_index(site: SyntheticSite, folder_path: Path, chunk_rows: int = 200_000):
    """Write the site's index folder (sightings, their ids, cameras, videos, times, track descriptors) and return
    the opened :class:`storage.vector_index.EmbeddingIndex`."""
    from pipelines.matching.similarity import copy_rows
    from storage.index_files import IndexFolder
    from storage.vector_index import EmbeddingIndex

    shutil.rmtree(folder_path, ignore_errors=True)
    index = EmbeddingIndex(1, DIMS, folder=IndexFolder(folder_path), database="synthetic", copy_rows=copy_rows)
    index._reserve(site.rows)
    index._descriptors.reserve(site.tracks, 0, index.generation)
    rng = np.random.default_rng(site.seed + 1)
    chunk_rows -= chunk_rows % PER_TRACK
    for start in range(0, site.rows, chunk_rows):
        stop = min(site.rows, start + chunk_rows)
        x = site.chunk(start, stop, rng)
        rows = slice(start, stop)
        copy_rows(index._matrix.data[rows], x)
        tracks = np.arange(start, stop) // PER_TRACK
        videos = tracks // site.tracks_per_video
        index._meta.data[rows] = np.stack([np.arange(start, stop), tracks, videos % CAMERAS + 1, videos], axis=1)
        index._times.data[rows, 0] = 1.7e9 + videos * 3600.0 + (np.arange(start, stop) % PER_TRACK)
        means = x.reshape(-1, PER_TRACK, DIMS).mean(axis=1)
        index._descriptors.data[start // PER_TRACK : stop // PER_TRACK] = means / np.linalg.norm(
            means, axis=1, keepdims=True
        )
    index.size = site.rows
    track_ids = np.arange(site.tracks)
    video_of_track = track_ids // site.tracks_per_video
    ints = np.stack([track_ids, video_of_track % CAMERAS + 1, video_of_track], axis=1)
    times = np.stack([1.7e9 + video_of_track * 3600.0, 1.7e9 + video_of_track * 3600.0 + PER_TRACK], axis=1)
    index.tracks = index._track_table(ints, times, site.tracks)
    index.videos = {int(v): "synthetic" for v in np.unique(video_of_track)}
    index._index_tracks()
    index._save(None)
    return index


def open_index(folder_path: Path):
    """Open a written folder as a new process would (map the files, read the small arrays, index the tracks)."""
    from storage.index_files import IndexFolder
    from storage.vector_index import EmbeddingIndex

    folder = IndexFolder(folder_path)
    index = EmbeddingIndex(1, DIMS, folder=folder, database="synthetic")
    index._adopt(folder.read_manifest())
    return index


def exact_top(vectors, queries: np.ndarray, k: int, chunk_rows: int = 262_144) -> np.ndarray:
    """``int64 [Q, k]`` exact best rows by a chunked float32 scan (the ground truth for recall)."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 0), np.int64)
    matrix = vectors.matrix
    for start in range(0, len(matrix), chunk_rows):
        block = np.asarray(matrix[start : start + chunk_rows], np.float32)
        scores = queries @ block.T
        rows = np.broadcast_to(np.arange(start, start + len(block)), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        rows = np.concatenate([best_rows, rows], axis=1)
        keep = np.argsort(-scores, axis=1)[:, :k]
        best_scores, best_rows = np.take_along_axis(scores, keep, 1), np.take_along_axis(rows, keep, 1)
    return best_rows


def measure_search(scorer, vectors, queries: np.ndarray, truth: np.ndarray, same_person, k: int = 10) -> dict:
    """Search p50/p95 (ms) over ``queries`` one at a time; mean recall@k against ``truth`` rows; and the share of
    the exact top-k's rows of the query's own person (``same_person(query index, rows) -> bool array``) that the
    search also returns (the true matches a user is looking for)."""
    times, recalls, found, wanted = [], [], 0, 0
    for i, (q, expected) in enumerate(zip(queries, truth)):
        t0 = time.perf_counter()
        rows, _ = scorer.top(vectors, q[None], None, k)
        times.append((time.perf_counter() - t0) * 1e3)
        recalls.append(len(set(rows.tolist()) & set(expected[:k].tolist())) / k)
        mates = set(expected[:k][same_person(i, expected[:k])].tolist())
        found += len(mates & set(rows.tolist()))
        wanted += len(mates)
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "recall": float(np.mean(recalls)),
        "match_recall": found / max(wanted, 1),
    }


def run(rows: int, folder_path: Path, queries: int = 100, keep: bool = False, exact_bytes: int = -1) -> None:
    """The whole search part for an index of ``rows`` sightings in ``folder_path`` (``exact_bytes``: the
    scorer's exact-scan limit, -1 for its default)."""
    from pipelines.matching.similarity import EXACT_BYTES, AnnScorer

    exact_bytes = EXACT_BYTES if exact_bytes < 0 else exact_bytes

    site = SyntheticSite(rows)
    t0 = time.perf_counter()
    written = write_index(site, folder_path)
    made = time.perf_counter() - t0
    size_gb = sum(p.stat().st_size for p in folder_path.iterdir()) / 1e9
    del written
    t0 = time.perf_counter()
    index = open_index(folder_path)
    opened = time.perf_counter() - t0
    print(
        f"{site.rows:,} sightings, {site.tracks:,} tracks, {len(index.videos):,} videos: written in {made:.0f} s "
        f"({size_gb:.1f} GB), opened in {opened:.2f} s",
        flush=True,
    )
    query, people = site.queries(queries), site.query_people(queries)
    for name, vectors in (("sightings", index), ("tracks (mean)", index.track_vectors())):
        tracks_of = (
            (lambda rows, v=vectors: v.ids[rows] // PER_TRACK)
            if name == "sightings"
            else (lambda rows, v=vectors: v.ids[rows])
        )
        scorer = AnnScorer("cpu", exact_bytes)
        t0 = time.perf_counter()
        approximate = scorer.approximate_index(vectors)
        built = time.perf_counter() - t0
        loaded = float("nan")
        if approximate is not None:
            t0 = time.perf_counter()
            AnnScorer("cpu", exact_bytes).approximate_index(vectors)
            loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        truth = exact_top(vectors, query, 10)
        exact_s = time.perf_counter() - t0
        result = measure_search(
            scorer, vectors, query, truth, lambda i, rows, t=tracks_of: site.person_of(t(rows)) == people[i]
        )
        kind = "exact scan" if approximate is None else f"IVF-PQ built {built:.0f} s, loaded {loaded:.1f} s"
        print(
            f"  {name}: {vectors.size:,} rows, {kind}; search p50 {result['p50_ms']:.1f} ms, "
            f"p95 {result['p95_ms']:.1f} ms, recall@10 {result['recall']:.3f}, the person's own rows among the "
            f"exact top 10 found {result['match_recall']:.3f} (exact truth in {exact_s:.0f} s)",
            flush=True,
        )
    if not keep:
        shutil.rmtree(folder_path, ignore_errors=True)
