"""With no --reid, ingest, search --image and clustering use the shipped joint-loss model and its own threshold."""

import sqlite3

import cv2
import pytest

from models.checkpoint import load_checkpoint
from models.default_model import default_checkpoint, default_model_ir
from tests.conftest import POSE_DETECTOR, _require, run_cli


@pytest.mark.slow
def test_ingest_without_reid_uses_the_shipped_model_and_its_calibrated_threshold(lab_cam0, lab_cam1, tmp_path):
    _, meta = load_checkpoint(default_checkpoint())
    threshold = meta["clustering_threshold"]
    db = tmp_path / "default.db"
    result = run_cli("ingest", lab_cam0, lab_cam1, "--db", db, "--duration", "3", "--detector", _require(POSE_DETECTOR))
    assert result.code == 0, result.stderr
    assert "warning" not in result.stderr.lower()
    assert f"threshold {threshold:.2f}" in result.stdout
    con = sqlite3.connect(db)
    name, dims, source = con.execute("SELECT name, dims, source FROM models").fetchone()
    vectors = con.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    crop = con.execute("SELECT id FROM sightings LIMIT 1").fetchone()[0]
    con.close()
    assert name == meta["name"] and dims == meta["dims"] and vectors > 0
    assert source == str(default_model_ir().resolve())  # inference runs the shipped OpenVINO IR
    # search --image without --reid encodes with the database's model (here the shipped one)
    image = tmp_path / "person.png"
    frame = cv2.VideoCapture(str(lab_cam0)).read()[1]
    cv2.imwrite(str(image), frame[200:600, 500:700])
    found = run_cli("search", "--db", db, "--image", image)
    assert found.code == 0, found.stderr
    assert "Matches for image" in found.stdout and crop is not None
