"""Scoring against the embedding index: exact torch scoring equals a float64 reference; FAISS IVF finds the same
neighbours on clustered data."""

import numpy as np
import pytest

from pipelines.similarity import FaissScorer, TorchScorer, make_scorer, top_tracks_by_rows
from reid_app.errors import UsageError
from storage.vector_index import EmbeddingIndex


def _index(n=3000, dim=64, seed=0, dtype=np.float16):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 30, dim))
    vectors = centres[np.arange(n) // 30] + 0.5 * rng.standard_normal((n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = EmbeddingIndex(1, dim, dtype)
    index._reserve(n)
    index._matrix[:n] = vectors
    index._meta[:n, 1] = np.arange(n) // 10  # tracks of 10 rows
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


def test_faiss_ivf_finds_the_exact_neighbours_on_clustered_embeddings():
    pytest.importorskip("faiss", reason="faiss-cpu is an optional accelerator")
    index, vectors = _index(n=6000)
    exact, approx = TorchScorer("cpu"), FaissScorer(nprobe=16)
    recall = []
    for q in vectors[::600]:
        truth = set(exact.top(index, q[None], None, 10)[0].tolist())
        recall.append(len(truth & set(approx.top(index, q[None], None, 10)[0].tolist())) / 10)
    assert np.mean(recall) >= 0.9
    valid = np.ones(index.size, bool)
    valid[::2] = False
    rows, _ = approx.top(index, vectors[1][None], valid, 10)
    assert len(rows) == 10 and valid[rows].all()


def test_unknown_index_kind_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown index"):
        make_scorer("annoy")


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
