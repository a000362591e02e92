"""A live site watched on a real local Ray cluster (two nodes) into a real PostgreSQL server, the cameras served by
a real RTSP server: each camera is watched by one of the two workers, and both end up recorded, analysed and
matched, with every segment finished when the watch is stopped."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage.database import open_database
from tests.conftest import real_weights_args, run_cli, run_cli_process

pytestmark = pytest.mark.slow


def test_two_cameras_are_watched_by_two_ray_workers_into_postgresql(
    ray_cluster, pg_url, rtsp_server, short_gop_clip, cam1_live_clip, tmp_path
):
    server = rtsp_server((), files={"cam0": short_gop_clip, "cam1": cam1_live_clip})
    site = tmp_path / "site.toml"
    site.write_text(
        '[site]\nsegment = "8s"\n\n'
        + "".join(f'[[camera]]\nname = "{c}"\nurl = "{server.url(c)}"\n\n' for c in ("cam0", "cam1"))
    )
    assert run_cli("cameras", "--db", pg_url).code == 0
    result = run_cli_process(
        "watch",
        "--site",
        site,
        "--db",
        pg_url,
        "--recordings",
        tmp_path / "recordings",
        "--cluster",
        ray_cluster,
        "--stop-after",
        "30",
        "--status-every",
        "5",
        *real_weights_args(),
        timeout=300,
    )
    assert result.code == 0, result.stdout + result.stderr
    assert "cluster: " + ray_cluster in result.stdout
    lines = [line for line in result.stdout.splitlines() if " live " in line]
    assert any("cam0" in line for line in lines) and any("cam1" in line for line in lines)  # both reported

    db = open_database(pg_url)
    try:
        with db.engine.connect() as con:
            per_camera = dict(
                con.execute(
                    text(
                        "SELECT c.name, count(DISTINCT v.id) FROM cameras c JOIN videos v ON v.camera_id = c.id "
                        "GROUP BY c.name"
                    )
                ).all()
            )
            statuses = {r[0] for r in con.execute(text("SELECT status FROM videos"))}
            sightings = dict(
                con.execute(
                    text(
                        "SELECT c.name, count(s.id) FROM sightings s JOIN videos v ON v.id = s.video_id "
                        "JOIN cameras c ON c.id = v.camera_id GROUP BY c.name"
                    )
                ).all()
            )
            unmatched = con.execute(
                text(
                    "SELECT count(*) FROM tracks t WHERE t.descriptor IS NOT NULL AND NOT t.static AND NOT EXISTS "
                    "(SELECT 1 FROM identity_tracks i WHERE i.track_id = t.id)"
                )
            ).scalar_one()
    finally:
        db.close()
    assert per_camera.get("cam0", 0) >= 2 and per_camera.get("cam1", 0) >= 2  # 8-s segments of each camera
    assert statuses == {"complete"}  # every segment finished on the clean stop
    assert sightings.get("cam0", 0) > 20 and sightings.get("cam1", 0) > 20
    assert unmatched == 0  # each worker's new tracks got identities (under the shared writer lock)
