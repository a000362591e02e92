"""The re-id models of a database (``models`` rows: name, checkpoint hash, dimensions) with what is recorded for each
(calibrated clustering threshold, descriptor layout), and the detector and pose weights ingest used."""

from __future__ import annotations

import json
from typing import Optional, Sequence

from sqlalchemy import select

from storage.database import Database, lock_for_writing
from storage.model_versions import current_model_id, embedding_counts
from storage.schema import (
    Meta,
    ReidModel,
)


def get_or_create_model(db: Database, name: str, checkpoint_hash: str, dims: int, source: str = "") -> int:
    """Id of the ``models`` row for (name, checkpoint_hash), created when new."""
    with db.sessions.begin() as session:
        lock_for_writing(session)  # processes on several machines may register the same model at once
        row = session.scalar(
            select(ReidModel).where(ReidModel.name == name, ReidModel.checkpoint_hash == checkpoint_hash)
        )
        if row is None:
            row = ReidModel(name=name, checkpoint_hash=checkpoint_hash, dims=dims, source=source)
            session.add(row)
            session.flush()
        elif source and row.source != source:
            row.source = source
        return row.id


def _threshold_key(model_id: int) -> str:
    return f"model.{model_id}.clustering_threshold"


def set_model_threshold(db: Database, model_id: int, threshold: float) -> None:
    """Record the identity-clustering threshold a model was calibrated with (cosine, from its checkpoint's
    metadata), in ``reid_meta`` under ``model.<id>.clustering_threshold``."""
    with db.sessions.begin() as session:
        session.merge(Meta(key=_threshold_key(model_id), value=repr(float(threshold))))


def model_threshold(db: Database, model_id: int) -> Optional[float]:
    """The threshold recorded by :func:`set_model_threshold`, or None."""
    with db.session() as session:
        value = session.scalar(select(Meta.value).where(Meta.key == _threshold_key(model_id)))
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _layout_key(model_id: int) -> str:
    return f"model.{model_id}.descriptor_layout"


def set_model_layout(db: Database, model_id: int, layout: Sequence[dict]) -> None:
    """Record which descriptor columns each branch of a model fills (``[{"name", "start", "stop"}]``, global first,
    then the body parts; from the encoder), in ``reid_meta`` under ``model.<id>.descriptor_layout``, so searches can
    explain a match part by part without loading the model."""
    value = json.dumps([{"name": str(p["name"]), "start": int(p["start"]), "stop": int(p["stop"])} for p in layout])
    with db.sessions.begin() as session:
        session.merge(Meta(key=_layout_key(model_id), value=value))


def model_layout(db: Database, model_id: int) -> Optional[list[dict]]:
    """The layout recorded by :func:`set_model_layout`, or None (none recorded, or unreadable)."""
    with db.session() as session:
        value = session.scalar(select(Meta.value).where(Meta.key == _layout_key(model_id)))
    if value is None:
        return None
    try:
        return [{"name": str(p["name"]), "start": int(p["start"]), "stop": int(p["stop"])} for p in json.loads(value)]
    except (ValueError, TypeError, KeyError):
        return None


def set_ingest_models(db: Database, detector: str, pose: str) -> None:
    """Record the detector and pose backend the database's footage is ingested with (``reid_meta``
    ``ingest.detector`` / ``ingest.pose``), so that later ingests (the app's Add videos) default to them."""
    with db.sessions.begin() as session:
        session.merge(Meta(key="ingest.detector", value=detector))
        session.merge(Meta(key="ingest.pose", value=pose))


def ingest_models(db: Database) -> dict[str, str]:
    """``{"detector": ..., "pose": ...}`` as recorded by :func:`set_ingest_models` (empty when never recorded)."""
    with db.session() as session:
        rows = session.execute(select(Meta.key, Meta.value).where(Meta.key.in_(["ingest.detector", "ingest.pose"])))
        return {key.split(".", 1)[1]: value for key, value in rows}


def list_models(db: Database) -> list[ReidModel]:
    """Every re-id model that has embeddings in this database: the current one first
    (``storage.model_versions.current_model_id``), then most embeddings first."""
    order = embedding_counts(db)
    current = current_model_id(db, order)
    with db.session() as session:
        models = [m for m in session.scalars(select(ReidModel)) if m.id in order]
    return sorted(models, key=lambda m: (m.id != current, -order[m.id], m.id))


def get_model(db: Database, model_id: int) -> Optional[ReidModel]:
    """The ``models`` row, or None."""
    with db.session() as session:
        return session.get(ReidModel, model_id)
