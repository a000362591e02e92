"""The OpenVINO IR re-id backend on Intel's real person-reidentification-retail models, and the shipped default."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.errors import WeightsError
from models.encoders import OPEN_MODEL_ZOO_BGR, OpenVinoEncoder, load_encoder
from models.ir_files import openvino_xml
from tests.conftest import ROOT, SHARED, WEIGHTS, run_cli

IR_0286 = WEIGHTS / "person-reidentification-retail-0286"


@pytest.fixture
def ir_0286() -> Path:
    if not IR_0286.exists():
        pytest.skip(f"{IR_0286} is absent: weights come from ../shared beside the repository")
    return IR_0286


def _crops(n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 255, (int(rng.integers(100, 300)), int(rng.integers(40, 120)), 3), dtype=np.uint8)
        for _ in range(n)
    ]


@pytest.mark.slow
def test_ir_backend_matches_direct_openvino_calls_one_crop_at_a_time(ir_0286):
    import cv2
    import openvino as ov

    encoder = load_encoder(ir_0286, batch_size=4)  # the folder is enough
    assert isinstance(encoder, OpenVinoEncoder)
    assert (encoder.name, encoder.dims, encoder.input_size) == ("person-reidentification-retail-0286", 256, (256, 128))
    assert encoder.preprocessing == OPEN_MODEL_ZOO_BGR
    crops = _crops(7)
    ours = encoder.encode(crops)  # batches of 4 and 3 through the dynamic batch
    compiled = ov.Core().compile_model(str(openvino_xml(ir_0286)), "CPU")
    for crop, row in zip(crops, ours):
        blob = cv2.resize(crop, (128, 256)).astype(np.float32).transpose(2, 0, 1)[None]  # BGR 0-255, no mean/std
        direct = compiled(blob)[compiled.outputs[0]][0]
        direct /= np.linalg.norm(direct)
        # batched and single-crop inference round differently on the CPU plugin (elements differ by ~4e-3)
        assert float(row @ direct) > 0.9995 and np.abs(row - direct).max() < 1e-2
    # the same person image in RGB order is another input: the recorded convention matters
    assert float(encoder.encode([crops[0][:, :, ::-1].copy()])[0] @ ours[0]) < 0.999


@pytest.mark.slow
def test_ir_given_as_its_xml_file_and_bad_irs_refused(ir_0286, tmp_path):
    encoder = load_encoder(openvino_xml(ir_0286))
    assert encoder.source.endswith("person-reidentification-retail-0286.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<net>not really</net>")
    with pytest.raises(WeightsError, match="could not be read"):
        OpenVinoEncoder(broken)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="not an OpenVINO IR"):
        OpenVinoEncoder(tmp_path / "empty")


@pytest.mark.slow
def test_evaluate_reproduces_the_published_cuhk03_table_for_0286(ir_0286):
    root = SHARED / "data" / "reid" / "cuhk03"
    if not root.exists():
        pytest.skip(f"{root} is absent")
    result = run_cli("evaluate", "--dataset", "cuhk03-views", "--root", root, "--weights", ir_0286, "--pose", "none")
    assert result.code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "plain" in line)
    numbers = [float(v) for v in row.replace("│", " ").split()[1:]]
    assert numbers[0] == pytest.approx(84.3, abs=0.6) and numbers[-1] == pytest.approx(81.2, abs=0.6)


@pytest.mark.slow
def test_shipped_default_loads_from_an_installed_copy_of_the_package(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    code = (
        "import models.default_model as d, models.encoders as e; p = d.default_checkpoint(); "
        "enc = e.load_encoder(None); print(p); print(enc.name, enc.dims, enc.clustering_threshold)"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    path, description = out.stdout.strip().splitlines()
    files = [Path(path), Path(path).with_suffix(".xml"), Path(path).with_suffix(".bin")]
    assert Path(path).is_relative_to(target) and sum(f.stat().st_size for f in files) <= 12 * 1024 * 1024
    name, dims, threshold = description.split()
    assert name.startswith("jointloss-osnet0286") and int(dims) > 0 and 0.0 < float(threshold) < 1.0
