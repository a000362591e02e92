"""Model versions of a site (issue 31, item 2): list them, make one current (re-encoding what it lacks first, then
switching in one transaction and re-clustering the identities under every investigator's verdict), roll back.

A version never becomes current silently: :func:`make_current` is the only way, called by ``reid-app adapt`` after
its check passed, by ``reid-app models use`` and by ``reid-app models rollback``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from common.errors import UsageError
from pipelines.adaptation.reencode import ReencodeReport, reencode_site
from pipelines.live.watchlist import carry_entries
from pipelines.matching.identities import ClusteringReport, cluster_identities
from storage.database import Database
from storage.model_registry import get_model
from storage.model_versions import (
    IncompleteVersionError,
    SwitchReport,
    all_models,
    current_model_id,
    embedding_counts,
    set_version_info,
    switch_model,
    version_info,
    videos_being_ingested,
    videos_to_encode,
)
from storage.watchlist import list_entries


@dataclass(frozen=True)
class ModelVersion:
    """One re-id model of the database, as ``reid-app models`` lists it.

    Attributes:
        id, name: the ``models`` row. source: its weights file ("" when unknown). exists: that file is there.
        embeddings: sightings it encoded. current: it is the current model. info: what adaptation recorded
            (``adapted_from``, ``created``, ``check_before``/``check_after``, ``state``...; empty for an ingest's
            model).
    """

    id: int
    name: str
    source: str
    exists: bool
    embeddings: int
    current: bool
    info: dict = field(default_factory=dict)


def list_versions(db: Database) -> list[ModelVersion]:
    """Every re-id model of the database, oldest first."""
    counts = embedding_counts(db)
    current = current_model_id(db)
    return [
        ModelVersion(
            m.id,
            m.name,
            m.source or "",
            bool(m.source) and Path(m.source).exists(),
            counts.get(m.id, 0),
            m.id == current,
            version_info(db, m.id),
        )
        for m in all_models(db)
    ]


@dataclass
class MakeCurrentReport:
    """What :func:`make_current` did: the re-encoding (None when nothing was missing), the switch and the
    re-clustering (None when it stopped before them: :attr:`reencode` says why), and the watchlist entries that
    could not be carried over to the new model (``pipelines.live.watchlist.carry_entries``)."""

    model_id: int
    reencode: Optional[ReencodeReport] = None
    switch: Optional[SwitchReport] = None
    clustering: Optional[ClusteringReport] = None
    watchlist_lost: list[str] = field(default_factory=list)


def make_current(
    db: Database,
    model_id: int,
    encoder=None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    stop: Callable[[], bool] = lambda: False,
    device: str = "cpu",
) -> MakeCurrentReport:
    """Make ``model_id`` the current model: encode every sighting of the current model it has not encoded (cut from
    the source footage; resumable), then switch (``storage.model_versions.switch_model``) and re-cluster the
    identities with it, keeping their ids, names and every verdict.

    Args:
        encoder: the model's ``models.encoders.ReIDEncoder``; None loads it from the model's file when needed.
        progress, stop: of the re-encoding (``pipelines.adaptation.reencode.reencode_site``).

    Raises:
        UsageError: no such model; its file is missing while sightings still need it; a video is being ingested
            (its sightings would be left out); footage could not be read for some sightings.
    """
    target = get_model(db, model_id)
    if target is None:
        raise UsageError(f"{db.location} has no re-id model {model_id}; 'reid-app models' lists them")
    current = current_model_id(db)
    report = MakeCurrentReport(model_id)
    if current == model_id:
        return report
    busy = videos_being_ingested(db)
    if busy:
        raise UsageError(
            f"{len(busy)} video(s) are being ingested now (such as {Path(busy[0]).name}); switch models after "
            "the ingest ends, so that none of its sightings is left out"
        )
    if current is not None:
        missing = _missing(db, current, model_id)
        if missing:
            if encoder is None:
                encoder = _load_encoder(target, device)
            report.reencode = reencode_site(db, encoder, current, model_id, progress, stop)
            if report.reencode.stopped:
                return report
            if not report.reencode.complete:
                where = ", ".join(f"{Path(p).name} ({n})" for p, n in sorted(report.reencode.unreadable.items())[:3])
                left = report.reencode.total - report.reencode.already - report.reencode.encoded
                raise UsageError(
                    f"model {model_id} could not encode {left} sightings: their footage cannot be read ({where}); "
                    f"the current model stays {current}"
                )
    try:
        report.switch = switch_model(db, model_id)
    except IncompleteVersionError as exc:  # an ingest finished meanwhile: run again to encode its sightings too
        raise UsageError(f"{exc}; run the command again") from None
    set_version_info(db, model_id, {"state": "current", "previous": current})
    if current is not None:
        set_version_info(db, current, {"state": "replaced"})
    report.clustering = cluster_identities(db, model_id, reason=f"model {model_id} made current")
    if current is not None:
        if encoder is None and any(e.kind == "image" for e in list_entries(db, current)):
            try:
                encoder = _load_encoder(target, device)
            except UsageError:
                encoder = None  # its image entries are reported as not carried
        report.watchlist_lost = carry_entries(db, current, model_id, encoder)
    return report


def adapted_model_file(db: Database) -> Optional[Path]:
    """The weights file of the current model when it is an adapted version (made by ``reid-app adapt``) whose file
    exists, so that new footage is encoded in the space the site now searches; None otherwise."""
    current = current_model_id(db)
    if current is None or not version_info(db, current).get("adapted_from"):
        return None
    model = get_model(db, current)
    return Path(model.source) if model is not None and model.source and Path(model.source).exists() else None


def rollback_target(db: Database) -> int:
    """The model the current one replaced when it was made current, else the version it was adapted from.

    Raises:
        UsageError: the current model was not made by adaptation and nothing was current before it.
    """
    current = current_model_id(db)
    info = version_info(db, current) if current is not None else {}
    target = info.get("previous") or info.get("adapted_from")
    if not target:
        raise UsageError(
            f"the current model {current} of {db.location} is not an adapted version: nothing to roll back to"
        )
    return int(target)


def _missing(db: Database, source: int, target: int) -> int:
    return sum(max(0, v.sightings - v.encoded) for v in videos_to_encode(db, source, target))


def _load_encoder(model, device: str):
    from models.encoders import load_encoder

    if not model.source or not Path(model.source).exists():
        raise UsageError(
            f"the weights of model {model.id} ({model.name}) are missing ({model.source or 'never recorded'}); "
            "it cannot encode the sightings it lacks"
        )
    return load_encoder(model.source, device)
