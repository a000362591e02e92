"""The work the main window hands to its job threads (``ui.jobs``), with no Qt: each call opens, reads or changes
the investigation through ``pipelines.matching.service``, imported on first use so that the window shows before the
pipelines (and torch) load. Results come back as the plain items the panels show (``ui.item_models``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ui.item_models import ResultItem, ThumbnailItem
from ui.results import QueryInfo

#: Matches fetched per search; the gallery filters them by camera and time.
SEARCH_TOP_K = 50


def _service():
    from pipelines.matching import service

    return service


def open_db(path: str):
    """The investigation database at ``path`` (``pipelines.matching.service.open_investigation``)."""
    return _service().open_investigation(path)


def overview(db):
    """Cameras, videos, identities and models of ``db`` (``pipelines.matching.service.overview``)."""
    return _service().overview(db)


def search_track(searcher, db, track_id: int):
    """The query's header, its matches as :class:`ResultItem` and the milliseconds the search took."""
    service = _service()
    found = service.search_track(searcher, db, track_id, SEARCH_TOP_K)
    q = found.query
    query = QueryInfo(
        track_id,
        q.camera,
        q.first_timestamp,
        q.last_timestamp,
        found.query_thumbnail,
        service.identities_of_tracks(db, [track_id]).get(track_id),
    )
    return query, [ResultItem.from_result(r) for r in found.results], found.elapsed_ms


def identity_thumbnails(db, identity_id: int, track_ids):
    """``(identity_id, [ThumbnailItem])``: one thumbnail per track of the identity."""
    return identity_id, [
        ThumbnailItem(t.track_id, t.camera, t.timestamp, t.jpeg) for t in _service().identity_thumbnails(db, track_ids)
    ]


def asking(action: Callable, *args):
    """Run a feedback action; a refusal the user can be asked about comes back as the ``VerdictConflict``
    (the result) instead of an error."""
    service = _service()
    try:
        return action(*args)
    except service.VerdictConflict as conflict:
        return conflict


def feedback(db, verdict: str, track_a: int, track_b: int, resolution: str = "", cameras=()):
    """Confirm (``same``) or reject (``different``) a pair. ``resolution``: "" (plain), ``replace`` (replace the
    earlier verdict) or ``overlap`` (mark ``cameras`` (names) as overlapping first)."""
    service = _service()
    if resolution == "replace":
        return asking(service.replace_verdict, db, track_a, track_b, verdict)
    if resolution == "overlap":
        service.set_camera_overlap(db, list(cameras), True)
    return asking(service.give_verdict, db, verdict, track_a, track_b)


def identity_action(name: str, db, *args):
    """Run the service's identity action ``name`` (``merge``, ``split``, ``undo``...), asking about conflicts."""
    return asking(getattr(_service(), name), db, *args)


def label(db, identity_id: int, name: str, note: str):
    """Name an identity (an empty name clears it) with a note."""
    return _service().label(db, identity_id, name or None, note)


def export(db, identity_id: int, folder: str, clips: bool, progress: Callable[[str], None], redact: bool = True):
    """Export an identity's evidence into ``folder`` (``pipelines.matching.service.export_identity``)."""
    return _service().export_identity(db, identity_id, Path(folder), clips=clips, on_progress=progress, redact=redact)


def overlap(db, cameras, overlapping: bool):
    """Mark (or unmark) cameras as overlapping; returns the report and the overlaps now."""
    service = _service()
    report = service.set_camera_overlap(db, cameras, overlapping)
    return report, service.camera_overlaps(db)


class EncoderCache:
    """The image-query encoder of the open database, loaded on first use (seconds) and kept."""

    def __init__(self, loader: Callable):
        self.loader = loader
        self.encoder = None
        self.db = None

    def get(self, db):
        if self.encoder is None or self.db is not db:
            self.encoder, self.db = self.loader(db), db
        return self.encoder


def search_image(searcher, db, image_path: str, encoders: EncoderCache):
    """Search by a person image file: its header (the file's picture), its matches and the milliseconds taken."""
    found = _service().search_image(searcher, image_path, encoders.get(db), SEARCH_TOP_K)
    try:
        picture = Path(image_path).read_bytes()
    except OSError:
        picture = None
    query = QueryInfo(None, Path(image_path).name, 0.0, 0.0, picture)
    return query, [ResultItem.from_result(r) for r in found.results], found.elapsed_ms


def adapt_site(db, minutes: float, make_current: bool, progress, stop):
    """``pipelines.adaptation.adapt.adapt_site`` with the app's options (``progress``: an ``AdaptProgress``)."""
    from dataclasses import replace

    from pipelines.adaptation.adapt import adapt_site
    from pipelines.adaptation.options import AdaptOptions

    return adapt_site(db, replace(AdaptOptions(), minutes=float(minutes)), progress, stop, False, make_current)


def model_versions(db):
    """The database's re-id model versions (``pipelines.adaptation.versions.list_versions``)."""
    from pipelines.adaptation.versions import list_versions

    return list_versions(db)


def make_model_current(db, model_id, progress, stop):
    """Re-encode as needed and make ``model_id`` current; ``model_id`` None: roll back
    (``pipelines.adaptation.versions``)."""
    from pipelines.adaptation.versions import make_current, rollback_target

    target = rollback_target(db) if model_id is None else int(model_id)
    return make_current(db, target, progress=lambda done, total: progress.advance(done, {"total": total}), stop=stop)
