"""The check an adapted model must pass before it is made current (issue 31, item 3): on the site itself, with
pairs held out from training, how well each model agrees with what is known about the site, without labels.

- **Confirmed pairs** (an investigator said "same person"): the rank of one track's partner among every tracklet
  of the partner's camera, by the model's tracklet similarity (1 is best); a better model ranks them higher.
- **Negative pairs** (an investigator's rejections, and pairs the site rules out: seen at the same moment on
  cameras that do not overlap): how often one is the other's most similar tracklet in its camera (a false
  first match); a better model does that less.

Those pairs are held out of training, so the adapted model never saw them as answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class AgreementCheck:
    """One model's agreement with the held-out pairs.

    Attributes:
        confirmed: held-out confirmed pairs measured (each counted in both directions for the ranks).
        confirmed_mean_rank: mean rank of the partner in its camera (1 = first), NaN without confirmed pairs.
        confirmed_rank1: fraction of those at rank 1.
        negatives: held-out negative pairs measured.
        negative_first_match: fraction of them where one is the other's most similar tracklet in its camera.
        negative_mean_cosine: their mean cosine similarity.
    """

    confirmed: int
    confirmed_mean_rank: float
    confirmed_rank1: float
    negatives: int
    negative_first_match: float
    negative_mean_cosine: float

    def as_dict(self) -> dict:
        """Plain values (JSON)."""
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(self).items()}

    @property
    def measured(self) -> bool:
        """Whether any held-out pair was measured."""
        return self.confirmed + self.negatives > 0


def agreement(
    features: np.ndarray,
    cameras: np.ndarray,
    confirmed: Sequence[tuple[int, int]],
    negatives: Sequence[tuple[int, int]],
) -> AgreementCheck:
    """Measure a model's tracklet features against held-out pairs (module docstring).

    Args:
        features: ``float32 [T, D]`` L2-normalised tracklet features of the model.
        cameras: ``int64 [T]`` camera of each tracklet.
        confirmed, negatives: tracklet index pairs.
    """
    similarity = features @ features.T
    ranks = []
    for a, b in confirmed:
        for query, partner in ((a, b), (b, a)):
            pool = np.flatnonzero((cameras == cameras[partner]) & (np.arange(len(cameras)) != query))
            ranks.append(1 + int(np.sum(similarity[query, pool] > similarity[query, partner])))
    first, cosines = [], []
    for a, b in negatives:
        cosines.append(float(similarity[a, b]))
        hit = False
        for query, other in ((a, b), (b, a)):
            pool = np.flatnonzero((cameras == cameras[other]) & (np.arange(len(cameras)) != query))
            hit = hit or int(pool[np.argmax(similarity[query, pool])]) == other
        first.append(hit)
    return AgreementCheck(
        len(confirmed),
        float(np.mean(ranks)) if ranks else float("nan"),
        float(np.mean([r == 1 for r in ranks])) if ranks else float("nan"),
        len(negatives),
        float(np.mean(first)) if first else float("nan"),
        float(np.mean(cosines)) if cosines else float("nan"),
    )


def got_worse(before: AgreementCheck, after: AgreementCheck) -> list[str]:
    """Why ``after`` is worse than ``before`` (empty: not worse): confirmed partners ranked lower on average, or
    more negative pairs taken as first matches."""
    reasons = []
    if before.confirmed and after.confirmed_mean_rank > before.confirmed_mean_rank + 1e-9:
        reasons.append(
            "confirmed pairs ranked lower "
            f"(mean rank {before.confirmed_mean_rank:.2f} -> {after.confirmed_mean_rank:.2f})"
        )
    if before.negatives and after.negative_first_match > before.negative_first_match + 1e-9:
        reasons.append(
            "more rejected or impossible pairs taken as first matches "
            f"({100 * before.negative_first_match:.1f}% -> {100 * after.negative_first_match:.1f}%)"
        )
    return reasons


def split_held_out(pairs: Sequence[tuple[int, int]], every: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(kept for training, held out)``: every ``every``-th pair in sorted order is held out (the first one
    included, so a single pair is held out); deterministic, so a resumed run holds out the same pairs."""
    ordered = sorted((min(a, b), max(a, b)) for a, b in pairs)
    held = ordered[::every]
    kept = [p for i, p in enumerate(ordered) if i % every]
    return kept, held
