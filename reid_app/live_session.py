"""A live site watched from the desktop app: ``pipelines.live.watch.LiveSite`` on a thread of its own with its own
database connection, behind a small handle the app polls (newest frames, status lines) and that calls back with
alerts. Built here, in the composition root, so that the app never imports the pipelines that load torch."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Optional

from common.settings import Settings, recordings_dir_for
from reid_app.ingest_runner import IngestChoices, prepare_ingest, with_site_model

log = logging.getLogger(__name__)


def make_live_site(
    db,
    site,
    recordings: Path,
    prepared,
    on_alert: Optional[Callable[[dict], None]],
    min_embeddings: int = 2,
    status_every: float = 1.0,
):
    """The :class:`pipelines.live.watch.LiveSite` of ``site``'s cameras (a ``pipelines.live.site.Site``) with its
    watchlist
    matcher and alert dispatcher (each alert's JSON payload given to ``on_alert``); shared by ``reid-app watch``,
    its Ray workers (``--cluster``) and the desktop app's live session.

    Args:
        db: the open database. recordings: the recordings folder. prepared: the models
            (``reid_app.ingest_runner.PreparedIngest``). min_embeddings: crops a live track's descriptor averages
            before it is compared with the watchlist. status_every: seconds between status callbacks.
    """
    from pipelines.live.watch import LiveSite, WatchOptions
    from pipelines.live.watchlist import AlertDispatcher, load_matcher

    matcher = load_matcher(db, site.threshold, site.alert_repeat_s, min_embeddings)
    alerts = AlertDispatcher(db, site.webhook, on_alert=on_alert)
    options = WatchOptions(
        ingest=prepared.options,
        segment_s=site.segment_s,
        retention_s=site.retention_s,
        retention_every_s=site.retention_every_s,
        status_every_s=status_every,
    )
    return LiveSite(
        db,
        site.cameras,
        site.groups,
        Path(recordings),
        prepared.encoder,
        prepared.make_tracker,
        prepared.make_pose,
        options,
        matcher,
        alerts,
    )


class LiveSession:
    """Watches the cameras of a site file into a database until :meth:`stop`.

    Args:
        site_path: the site file (``pipelines.live.site``).
        location: the database (the app's open one).
        choices: detector, pose and re-id choices (as the app ingests).
        settings: the user's settings.
        on_alert: called with each alert's JSON payload, on the watch thread.

    Raises:
        UsageError: a bad site file. WeightsError: models cannot be loaded.
    """

    def __init__(
        self,
        site_path: str,
        location: str,
        choices: IngestChoices,
        settings: Settings,
        on_alert: Optional[Callable[[dict], None]] = None,
    ):
        from pipelines.live.site import load_site
        from storage.database import open_database

        site = load_site(site_path)
        self.db = open_database(location)
        prepared = prepare_ingest(with_site_model(choices, self.db), settings)
        recordings = site.recordings or recordings_dir_for(location)
        self.cameras = [c.name for c in site.cameras]
        self.site = make_live_site(self.db, site, Path(recordings), prepared, on_alert)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-site", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.site.run(self._stop)
        except Exception:  # logged, never lost in a thread
            log.exception("the live site stopped")
        finally:
            self.db.close()

    def latest_frame(self, camera: str):
        """The newest analysed frame of ``camera`` (``pipelines.live.watch.LiveFrame``) or None."""
        return self.site.latest_frame(camera)

    def statuses(self) -> list:
        """Every camera's ``pipelines.live.watch.CameraStatus``."""
        return self.site.statuses()

    def stop(self, wait_s: float = 30.0) -> None:
        """Stop watching: the last sightings are stored and the recordings closed (waits at most ``wait_s``)."""
        self._stop.set()
        self._thread.join(wait_s)

    @property
    def running(self) -> bool:
        """True until the watch has ended."""
        return self._thread.is_alive()
