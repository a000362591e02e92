"""Site files of 'reid-app watch': what a good one gives, and one clear line for each mistake."""

from pathlib import Path

import pytest

from common.errors import UsageError
from pipelines.live.site import load_site, parse_duration
from tests.conftest import run_cli

GOOD = """
[site]
db = "site.db"
recordings = "footage"
fps = 4
segment = "2m"
retention = "30d"
retention_every = "6h"
webhook = "https://alerts.example/reid?token=abc"
alert_repeat = 90
threshold = 0.7

[[camera]]
name = "entrance"
url = "rtsp://admin:hunter2@10.0.0.5/stream1"
group = "lobby"
transport = "udp"

[[camera]]
name = "lobby-east"
url = "rtsp://10.0.0.6/live"
group = "lobby"
fps = 2

[[camera]]
name = "yard"
url = "/dev/video0"
"""


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def test_a_good_site_file_gives_cameras_groups_and_durations_in_seconds(tmp_path):
    site = load_site(_site(tmp_path, GOOD))
    assert [c.name for c in site.cameras] == ["entrance", "lobby-east", "yard"]
    entrance, east, yard = site.cameras
    assert (entrance.transport, entrance.fps, east.fps, yard.url) == ("udp", 4.0, 2.0, "/dev/video0")
    assert entrance.shown_url == "rtsp://***@10.0.0.5/stream1"
    assert site.groups == {"lobby": ["entrance", "lobby-east"]}
    assert site.db == str(tmp_path.resolve() / "site.db") and site.recordings == tmp_path.resolve() / "footage"
    assert (site.segment_s, site.retention_s, site.retention_every_s, site.alert_repeat_s) == (
        120,
        30 * 86400,
        6 * 3600,
        90,
    )
    assert site.threshold == 0.7 and site.webhook.endswith("token=abc")


@pytest.mark.parametrize(
    "change, message",
    [
        (("fps = 4", "fps = 0"), "[site] fps must be a number from 0.1 to 60, got 0"),
        (
            ('segment = "2m"', 'segment = "soon"'),
            "[site] segment must be a duration such as 30s, 10m, 2h or 30d, got 'soon'",
        ),
        (("threshold = 0.7", "treshold = 0.7"), "unknown [site] setting(s) treshold"),
        (('transport = "udp"', 'transport = "quic"'), "camera 1 (entrance): transport must be tcp or udp"),
        (('name = "yard"', 'name = "entrance"'), "camera name(s) entrance used more than once"),
        (
            ('url = "/dev/video0"', 'url = "/videos/yard.mp4"'),
            "camera 3 (yard): url /videos/yard.mp4 is not a live stream",
        ),
        (('name = "yard"', 'name = "yard/north"'), "name 'yard/north' must be usable as a folder name"),
        (('webhook = "https://alerts', 'webhook = "ftp://alerts'), "[site] webhook must be an http:// or https:// URL"),
        (('[[camera]]\nname = "lobby-east"', '[[camera]]\nlabel = "lobby-east"'), "camera 2: unknown setting(s) label"),
        (("alert_repeat = 90", "alert_repeat = -5"), "[site] alert_repeat must be more than 0 seconds, got -5"),
    ],
)
def test_each_mistake_is_named_with_the_file_and_the_setting(tmp_path, change, message):
    path = _site(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(UsageError) as error:
        load_site(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "hunter2" not in str(error.value)


def test_a_bad_url_is_refused_without_its_credentials(tmp_path):
    path = _site(tmp_path, GOOD.replace("rtsp://admin:hunter2@10.0.0.5/stream1", "admin:hunter2@10.0.0.5/stream1"))
    with pytest.raises(UsageError) as error:
        load_site(path)
    assert "not a live stream" in str(error.value) and "hunter2" not in str(error.value)


def test_missing_invalid_and_empty_site_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_site(tmp_path / "nowhere.toml")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_site(_site(tmp_path, "[site\nfps = 5"))
    with pytest.raises(UsageError, match="names no camera"):
        load_site(_site(tmp_path, "[site]\nfps = 5\n"))


def test_durations():
    assert [parse_duration(v, "x") for v in (90, "45s", "10m", "2h", "1.5d", " 7 ")] == [90, 45, 600, 7200, 129600, 7]
    for bad in ("", "5w", "-3m", 0, True, "inf"):
        with pytest.raises(UsageError, match="x must be"):
            parse_duration(bad, "x")


def test_watch_refuses_a_bad_site_file_in_one_line_before_loading_models(tmp_path):
    path = _site(tmp_path, GOOD.replace("fps = 4", "fps = 'fast'"))
    result = run_cli("watch", "--site", path, "--db", tmp_path / "x.db")
    assert result.code == 2 and result.error_lines == [
        f"reid-app: error: site file {path}: [site] fps must be a number from 0.1 to 60, got 'fast'"
    ]
    assert not (tmp_path / "x.db").exists()
