"""Save screenshots of the reid-app main window after a search (offscreen; no display needed).

    python scripts/screenshot.py --db lab.db --out screenshots/

Opens the database, picks a person seen by several cameras (the first multi-camera identity; or --track),
shows the moment that person is first seen, searches every camera for them, and saves:

    1-search.png       the player at the query's moment with the matches list filled
    2-jump.png         after double-clicking the best match on another camera: the player at that match
    3-identity.png     the identity selected: highlighted in the player and the ruler, its timeline and thumbnails
    4-report.png       with --export: the case report exported from the app, rendered by headless chromium
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _wait(app, condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.01)


def _settle(app, seconds: float = 0.8) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a database made by 'reid-app ingest'")
    parser.add_argument("--out", default="screenshots", help="output folder")
    parser.add_argument("--track", type=int, help="query track (default: a track of a multi-camera identity)")
    parser.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT in pixels")
    parser.add_argument(
        "--export",
        action="store_true",
        help="also export the identity's evidence from the app "
        "(with clips) into OUT/evidence and screenshot its case report in headless chromium",
    )
    args = parser.parse_args()

    from PySide6.QtCore import QSettings

    from reid_app.ingest_runner import IngestChoices
    from ui.app import create_application
    from ui.main_window import AppServices, MainWindow

    app = create_application([sys.argv[0]])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings_file = out / "screenshot-settings.ini"
    settings_file.unlink(missing_ok=True)  # the default layout, not the one a previous run left
    settings = QSettings(str(settings_file), QSettings.Format.IniFormat)
    window = MainWindow(AppServices(prepare_ingest=None, default_choices=IngestChoices()), settings)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    loaded = []
    window.overviewLoaded.connect(lambda: loaded.append(True))
    window.open_database(Path(args.db))
    _wait(app, lambda: loaded)

    identities = window.identities_panel.model.items()
    track = args.track
    identity = next((i for i in identities if len(i.cameras) > 1), identities[0] if identities else None)
    if track is None:
        if identity is None:
            raise SystemExit(f"{args.db} has no identities to search for")
        track = identity.track_ids[0]
    found = []
    window.searchFinished.connect(lambda *a: found.append(a))
    first = next((i for i in identities if track in i.track_ids), None)  # None: a track in no identity
    if first is not None:
        camera, ranges = next((c, r) for c, r in first.cameras.items() if any(track in t for _, _, t in r))
        start = next(s for s, _, t in ranges if track in t)
        window.player.show_moment(next(c.id for c in window.cameras if c.name == camera), start + 0.5)
    else:
        from storage.reads import get_tracks

        info = get_tracks(window.db, [track]).get(track)
        if info is None:
            window.close()
            raise SystemExit(f"track {track} does not exist in {args.db}")
        print(f"track {track} is in no identity (static, or without a descriptor): the identity view is skipped")
        window.player.show_moment(info.camera_id, info.first_timestamp + 0.5)
    window.search(track)
    _wait(app, lambda: found)
    _settle(app)
    window.grab().save(str(out / "1-search.png"))

    results = window.results_panel.items()
    other = next((r for r in results if r.camera != window.results_panel.query.camera), None)
    if other is not None:
        window._show_result(other.camera_id, other.timestamp, other.track_id)
        _settle(app)
        window.grab().save(str(out / "2-jump.png"))
    if first is not None:
        window.identities_panel.select_identity(first.id)
        _settle(app, 1.5)
        window.grab().save(str(out / "3-identity.png"))
    if args.export and first is not None:
        exported = []
        window.exportFinished.connect(exported.append)
        window.export_evidence(first.id, str(out / "evidence"), True)
        _wait(app, lambda: exported, timeout_s=600)
        _browser_screenshot(exported[0].html_path, out / "4-report.png")
    print(f"query track {track}: {len(results)} matches; screenshots in {out}/")
    window.close()


def _browser_screenshot(html: Path, png: Path) -> None:
    import shutil
    import subprocess
    import tempfile

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed: no screenshot of the case report")
        return
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1200,1400",
                f"--screenshot={png}",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
        )


if __name__ == "__main__":
    main()
