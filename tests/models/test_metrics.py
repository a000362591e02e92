import numpy as np
import pytest

from models.metrics import evaluate_ranking
from models.reranking import k_reciprocal_rerank


def _hand_case():
    # gallery: g0 pid1/cam1 (same pid+cam as q0: excluded), g1 pid2/cam2, g2 pid1/cam2, g3 junk (-1),
    #          g4 pid1/cam3, g5 distractor (0)
    g_pids = np.array([1, 2, 1, -1, 1, 0])
    g_cams = np.array([1, 2, 2, 2, 3, 2])
    q_pids = np.array([1, 2, 3])
    q_cams = np.array([1, 1, 1])
    d = np.array(
        [
            [0.01, 0.2, 0.3, 0.05, 0.5, 0.4],  # kept order: g1(-) g2(+) g5(-) g4(+)
            [0.9, 0.1, 0.2, 0.3, 0.4, 0.5],  # g1 (+) first
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        ]
    )  # pid 3 has no match: skipped
    return d, q_pids, g_pids, q_cams, g_cams


def test_cmc_and_map_against_hand_computed_values_with_same_camera_and_junk_exclusion():
    result = evaluate_ranking(*_hand_case(), max_rank=5)
    assert result.num_queries == 2
    np.testing.assert_allclose(result.cmc, [0.5, 1.0, 1.0, 1.0, 1.0])
    # q0: hits at kept ranks 2 and 4 -> AP = (1/2 + 2/4) / 2 = 0.5; q1: AP = 1
    assert result.mAP == pytest.approx(0.75)
    assert result.as_dict((1, 5)) == {"rank1": 50.0, "rank5": 100.0, "mAP": 75.0}


def test_without_the_exclusions_the_numbers_would_differ():
    d, q_pids, g_pids, q_cams, g_cams = _hand_case()
    naive = evaluate_ranking(d, q_pids, g_pids, q_cams, g_cams + 10, max_rank=5, junk_pids=())
    # the same-camera g0 would be a rank-1 hit: q0 order g0(+) g3(-) g1(-) g2(+) g5(-) g4(+)
    assert naive.rank(1) == 1.0
    assert naive.mAP == pytest.approx(((1 / 1 + 2 / 4 + 3 / 6) / 3 + 1.0) / 2)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="labels"):
        evaluate_ranking(np.zeros((2, 3)), [1, 2], [1, 2], [1, 1], [1, 1])


def _sq_dist(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def test_k_reciprocal_rerank_promotes_the_reciprocal_neighbour():
    query = np.array([[0.0, 0.0]])
    gallery = np.array(
        [
            [0.0, 0.9],  # g0: nearest to the query, but its own neighbours are the tight cluster g1-g3
            [0.0, 1.3],
            [0.1, 1.35],
            [-0.1, 1.35],
            [-1.0, 0.0],  # g4: slightly farther, but the query is its nearest neighbour (k-reciprocal)
        ]
    )
    qg, qq, gg = _sq_dist(query, gallery), _sq_dist(query, query), _sq_dist(gallery, gallery)
    assert np.argmin(qg[0]) == 0
    jaccard_only = k_reciprocal_rerank(qg, qq, gg, k1=2, k2=1, lambda_value=0.0)
    assert jaccard_only.shape == (1, 5) and jaccard_only.dtype == np.float32
    assert np.argmin(jaccard_only[0]) == 4
    assert jaccard_only[0, 0] == pytest.approx(1.0)  # g0 shares no k-reciprocal neighbour with the query
    assert np.argmin(k_reciprocal_rerank(qg, qq, gg, k1=2, k2=1, lambda_value=0.3)[0]) == 4
    # lambda = 1 gives back the original distances, each query row scaled by its own maximum over probe + gallery
    full = np.block([[qq, qg], [qg.T, gg]])
    np.testing.assert_allclose(
        k_reciprocal_rerank(qg, qq, gg, k1=2, k2=1, lambda_value=1.0), qg / full.max(axis=1)[:1, None], rtol=1e-5
    )


def _reference_rerank(qg, qq, gg, k1, k2, lam):
    """Zhong et al. 2017 written out loop by loop from the paper (Eq. 4-12), as an independent check."""
    n_q = qg.shape[0]
    d = np.block([[qq, qg], [qg.T, gg]]).astype(np.float64)
    n = d.shape[0]
    d = d / d.max(axis=1, keepdims=True)
    order = [list(np.argsort(d[i], kind="stable")) for i in range(n)]

    def knn(i, k):
        return order[i][: k + 1]

    def reciprocal(i, k):
        return [j for j in knn(i, k) if i in knn(j, k)]

    encodings = np.zeros((n, n))
    for p in range(n):
        base = reciprocal(p, k1)
        members = set(base)
        for c in base:
            extra = reciprocal(c, int(round(k1 / 2)))
            if len(set(extra) & set(base)) > 2 / 3 * len(extra):
                members |= set(extra)
        total = sum(np.exp(-d[p, j]) for j in members)
        for j in members:
            encodings[p, j] = np.exp(-d[p, j]) / total
    expanded = np.array([encodings[order[p][:k2]].mean(axis=0) for p in range(n)])
    out = np.zeros_like(qg, dtype=np.float64)
    for p in range(n_q):
        for g in range(qg.shape[1]):
            a, b = expanded[p], expanded[n_q + g]
            out[p, g] = (1 - lam) * (1 - np.minimum(a, b).sum() / np.maximum(a, b).sum()) + lam * d[p, n_q + g]
    return out


def test_k_reciprocal_rerank_matches_a_loop_by_loop_reference_on_random_data():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(8, 16))
    features = centres[rng.integers(0, 8, 60)] + 0.6 * rng.normal(size=(60, 16))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    query, gallery = features[:12], features[12:]
    qg, qq, gg = 2 - 2 * query @ gallery.T, 2 - 2 * query @ query.T, 2 - 2 * gallery @ gallery.T
    qq, gg = np.maximum(qq, 0), np.maximum(gg, 0)
    np.fill_diagonal(qq, 0), np.fill_diagonal(gg, 0)
    ours = k_reciprocal_rerank(qg, qq, gg, k1=8, k2=3, lambda_value=0.3)
    reference = _reference_rerank(qg, qq, gg, 8, 3, 0.3)
    np.testing.assert_allclose(ours, reference, atol=2e-5)
    for p in range(len(query)):  # the top 10 of every query agrees
        assert list(np.argsort(ours[p], kind="stable")[:10]) == list(np.argsort(reference[p], kind="stable")[:10])


def test_rerank_validates_shapes():
    with pytest.raises(ValueError):
        k_reciprocal_rerank(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))
