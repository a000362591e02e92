"""Scoring against the embedding index: exact torch scoring equals a float64 reference; the approximate IVF-PQ
scorer finds the same neighbours on clustered data, honours masks, and is saved and kept in step with the set."""

import numpy as np
import pytest

from common.errors import UsageError
from pipelines.matching.ann import IvfPqIndex
from pipelines.matching.similarity import AnnScorer, TorchScorer, make_scorer, top_tracks_by_rows
from storage.vector_index import EmbeddingIndex


def _index(n=3000, dim=64, seed=0, dtype=np.float16):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 30, dim))
    vectors = centres[np.arange(n) // 30] + 0.5 * rng.standard_normal((n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = EmbeddingIndex(1, dim, dtype)
    index._reserve(n)
    index._matrix.data[:n] = vectors
    index._meta.data[:n, 0] = np.arange(n)  # sighting ids
    index._meta.data[:n, 1] = np.arange(n) // 10  # tracks of 10 rows
    index._meta.data[:n, 3] = 0  # one video
    index.videos = {0: "ingested"}
    index.size = n
    index._index_tracks()
    return index, vectors.astype(np.float32)


def test_torch_scorer_matches_a_float64_reference_with_masks_and_several_queries():
    index, vectors = _index()
    queries = vectors[[5, 900]]
    valid = np.ones(index.size, bool)
    valid[:30] = False
    rows, scores = TorchScorer("cpu").top(index, queries, valid, 25)
    reference = (vectors.astype(np.float64) @ queries.T.astype(np.float64)).max(axis=1)
    reference[~valid] = -np.inf
    expected = np.argsort(-reference)[:25]
    assert len(set(rows) & set(expected)) >= 24  # float16 may swap near-ties at the boundary
    np.testing.assert_allclose(scores, reference[rows], atol=2e-3)
    assert not (rows < 30).any() and np.all(np.diff(scores) <= 1e-6)
    part = TorchScorer("cpu").scores(index, queries, slice(100, 130))
    np.testing.assert_allclose(part, reference[100:130], atol=2e-3)
    assert len(TorchScorer("cpu").top(index, queries, np.zeros(index.size, bool), 10)[0]) == 0


def _recall(exact, approx, index, queries, valid=None, k=10):
    found = []
    for q in queries:
        truth = set(exact.top(index, q[None], valid, k)[0].tolist())
        found.append(len(truth & set(approx.top(index, q[None], valid, k)[0].tolist())) / k)
    return float(np.mean(found))


def test_ivf_pq_finds_the_exact_neighbours_on_clustered_embeddings_and_honours_masks():
    index, vectors = _index(n=6000)
    index._meta.data[:6000, 0] = np.arange(6000) * 3 + 7  # sighting ids: stable, not row numbers
    exact, approx = TorchScorer("cpu"), AnnScorer("cpu", exact_bytes=0)
    assert _recall(exact, approx, index, vectors[::300]) >= 0.95
    assert approx.approximate_index(index) is not None and approx.approximate_index(index).index.ntotal == 6000
    valid = np.ones(index.size, bool)
    valid[::2] = False
    assert _recall(exact, approx, index, vectors[1::300], valid) >= 0.95
    rows, scores = approx.top(index, vectors[1][None], valid, 10)
    assert len(rows) == 10 and valid[rows].all()
    stored = index.matrix[rows].astype(np.float64) @ vectors[1].astype(np.float64)
    np.testing.assert_allclose(scores, stored, atol=1e-5)  # candidates are re-scored exactly (float32)
    few = np.zeros(index.size, bool)
    few[4000:4100] = True  # a narrow filter is scanned exactly
    assert set(approx.top(index, vectors[4050][None], few, 5)[0]) == set(
        exact.top(index, vectors[4050][None], few, 5)[0]
    )


def test_the_approximate_index_is_saved_and_follows_removed_and_added_videos(tmp_path):
    from storage.index_files import IndexFolder

    index, vectors = _index(n=6000)
    index._meta.data[:6000, 0] = np.arange(6000) + 100
    index._meta.data[:6000, 3] = np.arange(6000) // 1000  # six videos
    index.videos = {v: "t" for v in range(6)}
    index.folder = IndexFolder(tmp_path)
    first = AnnScorer("cpu", exact_bytes=0)
    before = first.top(index, vectors[10][None], None, 10)
    assert (tmp_path / "ann-sightings-m1.faiss").exists()
    loaded = IvfPqIndex.load(index)
    assert loaded is not None and loaded.index.ntotal == 6000 and set(loaded.videos) == set(range(6))
    saved = (tmp_path / "ann-sightings-m1.faiss").read_bytes()
    damaged = bytearray(saved)
    damaged[len(saved) // 2] ^= 0xFF  # one flipped byte in the saved index: refused, never searched
    (tmp_path / "ann-sightings-m1.faiss").write_bytes(bytes(damaged))
    assert IvfPqIndex.load(index) is None
    (tmp_path / "ann-sightings-m1.faiss").write_bytes(saved)
    again = AnnScorer("cpu", exact_bytes=0)
    np.testing.assert_array_equal(again.top(index, vectors[10][None], None, 10)[0], before[0])
    # video 0 goes (its rows compacted away, generation bumps), video 6 arrives
    keep = index.video_ids != 0
    index._meta.data[:5000] = index._meta.data[:6000][keep]
    index._matrix.data[:5000] = index._matrix.data[:6000][keep]
    index._meta.data[5000:6000, 3] = 6
    index._meta.data[5000:6000, 0] = np.arange(7000, 8000)  # new sightings, new ids
    index._matrix.data[5000:6000] = vectors[:1000]
    index.generation += 1
    index.videos = {v: "t" for v in range(1, 7)}
    rows, _ = again.top(index, vectors[10][None], None, 10)
    assert (index.video_ids[rows] == 6).all()  # the query's neighbours now live in video 6, under new ids
    ann = again.approximate_index(index)
    assert ann.index.ntotal == 6000 and set(ann.videos) == set(range(1, 7))


def test_unknown_index_kind_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown index"):
        make_scorer("annoy")
    assert isinstance(make_scorer("auto"), AnnScorer) and isinstance(make_scorer("exact"), TorchScorer)


def test_per_track_maximum_on_the_device_equals_the_row_by_row_answer():
    index, vectors = _index()
    valid = np.ones(index.size, bool)
    valid[index.rows_of(0)] = False
    scorer = TorchScorer("cpu")
    tracks, scores = scorer.top_tracks(index, vectors[[3, 1234]], valid, 12)
    expected_tracks, expected_scores = top_tracks_by_rows(scorer, index, vectors[[3, 1234]], valid, 12)
    assert len(set(tracks.tolist()) & set(expected_tracks.tolist())) >= 11  # float16 ties may swap at the end
    assert 0 not in tracks.tolist()
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    reference = (vectors @ vectors[[3, 1234]].T).max(axis=1).reshape(-1, 10).max(axis=1)
    np.testing.assert_allclose(scores, reference[tracks], atol=2e-3)
