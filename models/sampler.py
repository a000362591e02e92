"""PK sampling for metric learning (Hermans et al. 2017): every batch holds P identities x K images each."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np


class PKSampler:
    """Batch sampler yielding ``P * K`` dataset indices per batch: P distinct identities, K images of each.

    One epoch visits every identity once, in random order (the last incomplete group of identities is dropped);
    identities with fewer than K images are sampled with replacement.

    Args:
        labels: identity label of each dataset item.
        p: identities per batch.
        k: images per identity.
        seed: random seed; each epoch (each ``iter()``) draws a new order.

    Raises:
        ValueError: ``p`` or ``k`` below 1 (k below 2 leaves the triplet loss without positives), or fewer than
            ``p`` identities.
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0):
        if p < 1 or k < 2:
            raise ValueError(f"a PK batch needs P >= 1 identities and K >= 2 images each, got P={p}, K={k}")
        self.by_label: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            self.by_label[int(label)].append(index)
        if len(self.by_label) < p:
            raise ValueError(f"P={p} identities per batch but the training set has only {len(self.by_label)}")
        self.p, self.k = p, k
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.by_label) // self.p

    def __iter__(self) -> Iterator[list[int]]:
        identities = list(self.by_label)
        order = self.rng.permutation(len(identities))
        for start in range(0, len(self) * self.p, self.p):
            batch = []
            for i in order[start : start + self.p]:
                pool = self.by_label[identities[i]]
                batch += self.rng.choice(pool, self.k, replace=len(pool) < self.k).tolist()
            yield batch
