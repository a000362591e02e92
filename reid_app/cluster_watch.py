"""Live sites on a Ray cluster (``reid-app watch --cluster ADDRESS``): the site's cameras are dealt out to Ray
actors, one per machine (one per GPU when the cluster has GPUs), each running the same
:class:`pipelines.live.watch.LiveSite` as a single-machine watch for its share, into the shared database (PostgreSQL)
and recordings folder (shared storage).

The driver prints every camera's status line, and on Ctrl-C, SIGTERM or ``--stop-after`` asks every actor to stop
cleanly (buffered sightings stored, segments closed, new tracks matched) and waits for their summaries. An actor
whose process dies is restarted by Ray and resumes its cameras; the recordings it was writing are finished by the
restart (``pipelines.live.watch.recover_abandoned``). Only the first actor applies retention, so the purge runs once.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

from common.errors import ReidAppError
from reid_app.cluster_ingest import connect
from reid_app.ingest_runner import IngestChoices

#: Times Ray restarts a dead watch actor (and retries its watch).
RESTARTS = 3


class WatchWorker:
    """One Ray actor's share of a site (see the module docstring). Its methods are called concurrently: ``run``
    blocks until ``stop`` is called, while ``statuses`` is polled."""

    def __init__(
        self, location: str, site, recordings: Path, choices: IngestChoices, min_embeddings: int, status_every: float
    ):
        from common.settings import load_settings
        from reid_app.ingest_runner import prepare_ingest
        from reid_app.live_session import make_live_site
        from storage.database import open_database

        self._stop = threading.Event()
        self.db = open_database(location)
        prepared = prepare_ingest(replace(choices), load_settings())
        # alerts: stored, audited, sent to the webhook; no console on a worker
        self.live = make_live_site(
            self.db, site, recordings, prepared, lambda payload: None, min_embeddings, status_every
        )

    def run(self):
        """Watch until :meth:`stop`; returns the :class:`pipelines.live.watch.WatchSummary`."""
        try:
            return self.live.run(self._stop)
        finally:
            self.db.close()

    def ready(self) -> bool:
        """True once the models are loaded (the constructor ran)."""
        return True

    def statuses(self):
        """The cameras' current :class:`pipelines.live.watch.CameraStatus` lines."""
        return self.live.statuses()

    def stop(self) -> None:
        self._stop.set()


def _prepare_site(location: str, site) -> None:
    """Make every camera and mark the site's overlap groups once, here, so that each worker only watches its share
    (a group may span workers)."""
    from storage.database import open_database
    from storage.feedback import set_overlap
    from storage.videos import ensure_cameras

    db = open_database(location)
    try:
        ids = ensure_cameras(db, [c.name for c in site.cameras])
        for members in site.groups.values():
            if len(members) > 1:
                set_overlap(db, [ids[m] for m in members])
    finally:
        db.close()


def _last_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _wait_until_ready(ray, workers: list, stop: threading.Event) -> None:
    """Wait while the actors load their models (so the watch starts on every machine at once).

    Raises:
        ReidAppError: an actor could not start (bad weights, database unreachable from its machine).
    """
    pending = [w.ready.remote() for w in workers]
    while pending and not stop.is_set():
        done, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
        try:
            ray.get(done)
        except ray.exceptions.RayError as exc:
            raise ReidAppError(f"a watch worker could not start: {_last_line(exc)}") from None


def deal_cameras(cameras: list, workers: int) -> list[list]:
    """``cameras`` dealt round-robin to ``workers`` (at most one per camera) shares."""
    workers = max(1, min(workers, len(cameras)))
    return [cameras[i::workers] for i in range(workers)]


def watch_on_cluster(
    address: str,
    location: str,
    site,
    recordings: Path,
    choices: IngestChoices,
    min_embeddings: int,
    stop: threading.Event,
    on_status: Callable[[list], None],
    status_every: float,
    on_ready: Callable[[], None] = lambda: None,
) -> list:
    """Watch ``site`` on the Ray cluster at ``address`` until ``stop`` is set; returns one
    :class:`pipelines.live.watch.WatchSummary` per actor. ``on_ready`` is called once every actor has loaded its models
    and the watch begins.

    Raises:
        UsageError: Ray missing, or no cluster at ``address``.
    """
    _prepare_site(location, site)
    ray = connect(address)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        wants_gpu = gpus > 0 and (choices.device in (None, "auto") or str(choices.device).startswith("cuda"))
        machines = len([n for n in ray.nodes() if n.get("Alive")])
        shares = deal_cameras(site.cameras, gpus if wants_gpu else machines)
        actor = ray.remote(WatchWorker).options(
            num_cpus=1,
            num_gpus=1 if wants_gpu else 0,
            max_restarts=RESTARTS,
            max_task_retries=RESTARTS,
            max_concurrency=4,
            scheduling_strategy="SPREAD",
        )
        workers = [
            actor.remote(
                location,
                replace(site, cameras=share, groups={}, retention_s=site.retention_s if i == 0 else None),
                recordings,
                choices,
                min_embeddings,
                status_every,
            )
            for i, share in enumerate(shares)
        ]
        _wait_until_ready(ray, workers, stop)
        runs = [w.run.remote() for w in workers]
        on_ready()
        while not stop.wait(status_every):
            done, _ = ray.wait(runs, num_returns=len(runs), timeout=0)
            if len(done) == len(runs):
                break
            try:
                on_status([s for share in ray.get([w.statuses.remote() for w in workers], timeout=30) for s in share])
            except (ray.exceptions.RayError, TimeoutError):  # an actor restarting: its line comes back later
                pass
        for w in workers:
            w.stop.remote()
        try:
            return ray.get(runs)
        except ray.exceptions.RayError as exc:
            raise ReidAppError(f"a watch worker failed: {_last_line(exc)}") from None
    finally:
        ray.shutdown()
