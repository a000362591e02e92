"""A real local Ray cluster for the distributed tests: a head and a second node on loopback, one CPU each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import free_port


def _ray(*args: str, env: dict) -> None:
    command = [str(Path(sys.executable).with_name("ray")), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def ray_cluster():
    """``HOST:PORT`` of a Ray head on loopback with one more node; both stopped afterwards."""
    pytest.importorskip("ray", reason="distributed ingest and watch need Ray")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    env = dict(os.environ, YOLO_VERBOSE="False", RAY_USAGE_STATS_ENABLED="0")
    port = free_port()
    common = ["--num-cpus", "1", "--object-store-memory", str(200 * 1024 * 1024), "--disable-usage-stats"]
    _ray(
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--temp-dir",
        temp,
        "--include-dashboard=false",
        *common,
        env=env,
    )
    try:
        _ray("start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", *common, env=env)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            [str(Path(sys.executable).with_name("ray")), "stop", "--force"], capture_output=True, env=env, timeout=120
        )
        shutil.rmtree(temp, ignore_errors=True)
