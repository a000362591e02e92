"""Standard re-id evaluation: CMC rank-k and mean average precision (mAP).

Protocol (Zheng et al. 2015, Market-1501; used by DukeMTMC-reID, CUHK03-NP and MSMT17): for each query, gallery
items with the query's pid *and* camid are removed (same-camera matches are trivial), and so are junk items (pid
``-1`` in Market-1501); distractors (pid ``0``) stay in as negatives. Queries left without any true match are
skipped. CMC(k) is the fraction of queries with a true match within the first k; AP is the mean of the precision at
the rank of each true match (non-interpolated, as in the common open-source re-id code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Pids that are never a match nor a non-match (Market-1501's junk images).
JUNK_PIDS = (-1,)


@dataclass
class RankingResult:
    """Evaluation outcome.

    Attributes:
        cmc: ``float64 [max_rank]``; ``cmc[k-1]`` is rank-k accuracy in [0, 1].
        mAP: mean average precision in [0, 1].
        num_queries: queries with at least one true match (the ones averaged).
    """

    cmc: np.ndarray
    mAP: float
    num_queries: int

    def rank(self, k: int) -> float:
        """Rank-k accuracy in [0, 1]."""
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def as_dict(self, ranks: tuple[int, ...] = (1, 5, 10, 20)) -> dict[str, float]:
        """``{"rank1": ..., "rank5": ..., "mAP": ...}`` in percent, for reports and checkpoint metadata."""
        out = {f"rank{k}": round(100 * self.rank(k), 2) for k in ranks if k <= len(self.cmc)}
        out["mAP"] = round(100 * self.mAP, 2)
        return out


def evaluate_ranking(
    distances: np.ndarray,
    query_pids: np.ndarray,
    gallery_pids: np.ndarray,
    query_camids: np.ndarray,
    gallery_camids: np.ndarray,
    max_rank: int = 20,
    junk_pids: tuple[int, ...] = JUNK_PIDS,
) -> RankingResult:
    """CMC and mAP under the standard protocol (module docstring).

    Args:
        distances: ``float [Q, G]``, smaller is more similar.
        query_pids, query_camids: ``int [Q]``.
        gallery_pids, gallery_camids: ``int [G]``.
        max_rank: length of the CMC curve.
        junk_pids: gallery pids ignored for every query.

    Returns:
        The :class:`RankingResult` (all zeros and ``num_queries=0`` when no query has a true match).

    Raises:
        ValueError: shapes do not agree.
    """
    distances = np.asarray(distances)
    q, g = distances.shape
    query_pids, query_camids = np.asarray(query_pids), np.asarray(query_camids)
    gallery_pids, gallery_camids = np.asarray(gallery_pids), np.asarray(gallery_camids)
    if (
        query_pids.shape != (q,)
        or query_camids.shape != (q,)
        or gallery_pids.shape != (g,)
        or gallery_camids.shape != (g,)
    ):
        raise ValueError(
            f"distances are {q}x{g} but got {len(query_pids)} query and {len(gallery_pids)} gallery labels"
        )
    junk_gallery = np.isin(gallery_pids, junk_pids)
    cmc_sum = np.zeros(max_rank)
    ap_sum, valid = 0.0, 0
    for i in range(q):
        order = np.argsort(distances[i], kind="stable")
        keep = ~(
            junk_gallery[order] | ((gallery_pids[order] == query_pids[i]) & (gallery_camids[order] == query_camids[i]))
        )
        matches = gallery_pids[order][keep] == query_pids[i]
        if not matches.any():
            continue
        valid += 1
        first = int(np.argmax(matches))
        if first < max_rank:
            cmc_sum[first:] += 1
        hits = np.flatnonzero(matches)
        ap_sum += float(np.mean((np.arange(len(hits)) + 1) / (hits + 1)))
    if valid == 0:
        return RankingResult(np.zeros(max_rank), 0.0, 0)
    return RankingResult(cmc_sum / valid, ap_sum / valid, valid)
