"""The settings and progress callbacks of ``reid-app adapt`` (``pipelines.adaptation.adapt``), apart so that the CLI
can show their defaults without loading the pipelines (torch among them) on every command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from common.errors import UsageError, setting
from models.configs import LossConfig, TrainConfig


@dataclass(frozen=True)
class AdaptOptions:
    """Settings of :func:`adapt_site`.

    Attributes:
        minutes: time budget of the whole adaptation before re-encoding (wall-clock minutes).
        samples: sightings per tracklet trained on. min_sightings: fewer encoded sightings and a track is left out.
        max_crops: crops trained on at most: past it, fewer sightings per tracklet (2 at least), then only the
            tracklets with the most encoded sightings, so that a large site's encoding passes fit the budget.
        threshold: lowest cosine that associates two cameras' tracklets (UTAL's cyclic ranking consistency).
        iterations: training batches at most.
        lr: Adam learning rate. id_weight / triplet_weight / distill_weight: loss weights (the per-camera tracklet
            identity loss is off by default: on CUHK01 as a site it cost rank-1 at every weight tried, README).
        wise_alpha: WiSE-FT (Wortsman et al., CVPR 2022): the adapted backbone is ``(1 - alpha) * start + alpha *
            adapted``, applied also when the time budget ends training early.
        held_out_every / negatives_held_out_every: hold-out rates of verdicts and of automatic negatives.
        device: ``cpu`` or ``cuda[:N]``.
    """

    minutes: float = 30.0
    samples: int = 8
    min_sightings: int = 2
    max_crops: int = 4000
    threshold: float = 0.4
    iterations: int = 300
    lr: float = 1e-4
    id_weight: float = 0.0
    triplet_weight: float = 1.0
    distill_weight: float = 1.0
    wise_alpha: float = 0.7
    held_out_every: int = 2
    negatives_held_out_every: int = 4
    device: str = "cpu"

    def check(self) -> None:
        """Raises UsageError naming the setting out of range."""
        if not self.minutes > 0:
            raise UsageError(f"{setting('minutes')} must be above 0, got {self.minutes}")
        if self.samples < 2:
            raise UsageError(f"{setting('samples')} must be at least 2, got {self.samples}")
        if not -1.0 <= self.threshold <= 1.0:
            raise UsageError(f"{setting('threshold')} must be a cosine between -1 and 1, got {self.threshold}")
        if not 0.0 <= self.wise_alpha <= 1.0:
            raise UsageError(f"the WiSE-FT weight must be in [0, 1], got {self.wise_alpha}")
        if self.iterations < 1:
            raise UsageError(f"{setting('iterations')} must be at least 1, got {self.iterations}")

    def train_config(self, epochs: int, p: int) -> TrainConfig:
        """The optimisation settings of adaptation: ``epochs`` epochs of P x 4 PK batches, Adam at :attr:`lr` on a
        cosine schedule with no warm-up, the early trunk frozen, images preloaded, no evaluation."""
        return TrainConfig(
            epochs=epochs,
            p=p,
            k=4,
            lr=self.lr,
            warmup_epochs=0,
            schedule="cosine",
            eval_every=0,
            workers=0,
            freeze_early=True,
            preload=True,
            amp=self.device.startswith("cuda"),
        )

    def loss_config(self) -> LossConfig:
        """The loss weights of adaptation."""
        return LossConfig(
            id_weight=self.id_weight, triplet_weight=self.triplet_weight, distill_weight=self.distill_weight
        )

    def training_key(self) -> dict:
        """The settings a resumed run must share with the interrupted one."""
        return {
            k: getattr(self, k)
            for k in (
                "samples",
                "min_sightings",
                "max_crops",
                "threshold",
                "iterations",
                "lr",
                "id_weight",
                "triplet_weight",
                "distill_weight",
                "wise_alpha",
                "held_out_every",
                "negatives_held_out_every",
            )
        }


class AdaptProgress:
    """Callbacks of :func:`adapt_site`; the default does nothing (the CLI and the app draw progress)."""

    def stage(self, text: str, total: Optional[int] = None) -> None:
        """A stage begins (``total`` steps, None: unknown)."""

    def advance(self, done: int, fields: Optional[dict] = None) -> None:
        """``done`` steps of the stage are done; ``fields`` (``loss``, ``associated``...) to show."""

    def message(self, text: str) -> None:
        """A note for the user."""


def progress_note(fields: Optional[dict]) -> str:
    """The words shown beside a progress bar for :meth:`AdaptProgress.advance`'s ``fields`` (the CLI's and the
    app's): the training loss and the share of tracklets associated across cameras."""
    fields = fields or {}
    note = []
    if "loss" in fields:
        note.append(f"loss {fields['loss']:.3f}")
    if "associated" in fields:
        note.append(f"{fields['associated']:.0%} of tracklets associated across cameras")
    return ", ".join(note)
