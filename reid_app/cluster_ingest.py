"""Distributed ingest on a Ray cluster (``reid-app ingest --cluster ADDRESS``): each video is one Ray task, placed
on any node with a free CPU (a GPU when the cluster has one), writing into the shared database (PostgreSQL).

A task loads the models once per worker process and ingests its video exactly as a local ingest does
(``reid_app.ingest_runner``). A worker that dies (machine lost, process killed) has its task retried by Ray on
another worker; the retry first reclaims the dead worker's half-written video (its lease: at once when the dead
process was on the same machine, after ``storage.leases.LEASE_TIMEOUT_S`` when it was on another), so a video is
stored exactly once. Video paths must be readable at the same path on every node (shared storage).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable, Optional, Sequence

from common.errors import ReidAppError, UsageError
from common.types import CameraSummary, IngestStatus
from reid_app.ingest_runner import IngestChoices

#: Times Ray runs a video's task again after its worker died.
RETRIES = 3

_prepared: dict = {}  # per worker process: the models of the last choices, loaded once


class _QuietProgress:
    """Progress callbacks of a task (nothing is shown on the worker; the driver prints each video's end)."""

    def on_start(self, summary, total_frames):
        pass

    def on_advance(self, camera, frames_analysed):
        pass

    def on_finish(self, summary):
        pass

    def on_message(self, text):
        pass


def _wait_for_lease(db, path, deadline_s: float) -> None:
    """Reclaim a dead worker's half-written copy of the video, waiting while its lease may still be renewed."""
    from pipelines.ingest.video import fingerprint
    from storage.leases import VideoBusyError
    from storage.videos import reclaim_abandoned

    started = time.monotonic()
    while True:
        try:
            reclaim_abandoned(db, fingerprint(path))
            return
        except VideoBusyError:
            if time.monotonic() - started > deadline_s:
                raise
            time.sleep(2.0)


def ingest_video_task(location: str, job, choices: IngestChoices) -> CameraSummary:
    """Ingest one video (``pipelines.ingest.files.IngestJob``) into the database at ``location``, on a Ray worker.

    Returns:
        The video's :class:`common.types.CameraSummary`.
    """
    from common.settings import load_settings
    from reid_app.ingest_runner import prepare_ingest
    from storage.database import open_database
    from storage.leases import LEASE_TIMEOUT_S

    key = repr(choices)
    if key not in _prepared:
        _prepared.clear()
        _prepared[key] = prepare_ingest(replace(choices), load_settings())
    db = open_database(location)
    try:
        try:
            _wait_for_lease(db, job.path, LEASE_TIMEOUT_S + 10)
        except ReidAppError as exc:
            return CameraSummary(camera=job.camera, video=str(job.path), status=IngestStatus.FAILED, message=str(exc))
        return _prepared[key].run(db, [job], _QuietProgress(), threading.Event())[0]
    finally:
        db.close()


#: Seconds to wait for a Ray head to accept a connection before saying none answers.
PROBE_TIMEOUT_S = 5.0


def _probe(address: str) -> None:
    """Refuse in seconds an address where nothing listens (``ray.init`` itself retries for minutes)."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except ValueError:
        raise UsageError(f"--cluster {address!r} is not HOST:PORT (the address 'ray start --head' printed)") from None
    except OSError as exc:
        raise UsageError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            f"'ray start --head' and give its address"
        ) from None


def connect(address: str):
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of its head, or ``auto``).

    Raises:
        UsageError: Ray is missing or no cluster answers there.
    """
    try:
        import ray
    except ImportError:
        raise UsageError("--cluster needs Ray: pip install ray") from None
    _probe(address)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(
            f"no Ray cluster answers at {address} ({str(exc).splitlines()[0]}); start one with "
            f"'ray start --head' and give its address"
        ) from None
    return ray


def ingest_on_cluster(
    address: str,
    location: str,
    jobs: Sequence,
    choices: IngestChoices,
    on_done: Callable[[CameraSummary], None] = lambda s: None,
) -> list[CameraSummary]:
    """Ingest ``jobs`` on the Ray cluster at ``address`` into the database at ``location`` (a URL every node can
    reach: PostgreSQL). Calls ``on_done`` as each video ends; returns the summaries in job order. On Ctrl-C the
    tasks are cancelled (their half-written videos are redone by the next run).

    Raises:
        UsageError: Ray missing, or no cluster at ``address``.
    """
    ray = connect(address)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        wants_gpu = gpus > 0 and (choices.device in (None, "auto") or str(choices.device).startswith("cuda"))
        task = ray.remote(ingest_video_task).options(
            num_cpus=1, num_gpus=1 if wants_gpu else 0, max_retries=RETRIES, retry_exceptions=False
        )
        pending = {task.remote(location, job, choices): i for i, job in enumerate(jobs)}
        summaries: list[Optional[CameraSummary]] = [None] * len(jobs)
        try:
            _collect(ray, pending, jobs, summaries, on_done)
        except KeyboardInterrupt:  # Ctrl-C: the tasks stop too (their videos are redone by the next run)
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return [s for s in summaries if s is not None]
    finally:
        ray.shutdown()


def _collect(ray, pending: dict, jobs: Sequence, summaries: list, on_done) -> None:
    """Fill ``summaries`` as the tasks in ``pending`` (ref -> job index) end, calling ``on_done`` for each."""
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in done:
            i = pending.pop(ref)
            try:
                summaries[i] = ray.get(ref)
            except Exception as exc:  # the task raised, or its workers died RETRIES + 1 times
                message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                summaries[i] = CameraSummary(
                    camera=jobs[i].camera,
                    video=str(jobs[i].path),
                    status=IngestStatus.FAILED,
                    message=f"on the cluster: {message}",
                )
            on_done(summaries[i])
