"""``reid-app train / evaluate / export`` end to end on a synthetic identity dataset, as a user runs them."""

import re
import sqlite3

import pytest

from models.checkpoint import load_checkpoint
from tests.conftest import POSE_DETECTOR, _require, run_cli
from tests.models.synthetic import write_generic_dataset

TRAIN_ARGS = [
    "--arch",
    "resnet18",
    "--no-pretrained",
    "--input-size",
    "64x32",
    "--batch-p",
    "8",
    "--batch-k",
    "4",
    "--warmup-epochs",
    "1",
    "--lr",
    "1e-3",
    "--workers",
    "0",
    "--pose",
    "none",
    "--seed",
    "0",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_generic_dataset(tmp_path_factory.mktemp("synthetic"), train_ids=16, test_ids=20, per_camera=4)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "model.pt"
    result = run_cli(
        "train",
        "--dataset",
        "generic",
        "--root",
        dataset,
        "--out",
        out,
        "--epochs",
        "8",
        "--eval-every",
        "4",
        *TRAIN_ARGS,
    )
    assert result.code == 0, result.stderr
    return out, result


def _metrics(text, row):
    line = next(line for line in text.splitlines() if row in line)
    return [float(v) for v in re.findall(r"\d+\.\d+", line)]


@pytest.mark.slow
def test_training_lowers_the_loss_and_ranks_above_chance(trained):
    out, result = trained
    _, meta = load_checkpoint(out)
    history = meta["history"]
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["accuracy"] > 2 * (1 / 16)  # identity accuracy above chance on 16 training ids
    assert "metrics" in history[3] and "metrics" in history[7]  # --eval-every 4
    # chance rank-1: 4 true matches among 76 gallery images left after the same-camera exclusion = 5.3%
    assert meta["metrics"]["rank1"] > 3 * 100 * 4 / 76
    assert meta["config"]["backbone"] == "resnet18" and meta["epoch"] == 8 and meta["dataset"] == "generic"
    assert "epoch 8: loss" in result.stderr and "checkpoint:" in result.stdout
    assert _metrics(result.stdout, "query/gallery")[0] == meta["metrics"]["rank1"]


@pytest.mark.slow
def test_evaluate_reports_cmc_and_map_with_rerank_and_flip(trained, dataset):
    out, _ = trained
    result = run_cli(
        "evaluate", "--dataset", "generic", "--root", dataset, "--weights", out, "--rerank", "--flip", "--pose", "none"
    )
    assert result.code == 0, result.stderr
    assert "20 queries (20 with a match), 160 gallery images" in result.stdout
    plain, reranked = _metrics(result.stdout, "plain + flip"), _metrics(result.stdout, "re-ranked")
    assert len(plain) == len(reranked) == 5
    assert all(0 <= v <= 100 for v in plain + reranked)
    assert plain[0] <= plain[1] <= plain[2] <= plain[3]  # CMC is non-decreasing


@pytest.mark.slow
def test_export_agrees_with_pytorch_and_the_onnx_model_evaluates_the_same(trained, dataset, tmp_path):
    out, _ = trained
    onnx_path = tmp_path / "model.onnx"
    result = run_cli("export", "--weights", out, "--onnx", onnx_path)
    assert result.code == 0, result.stderr
    assert onnx_path.is_file() and "inputs images, part_boxes -> descriptor [N, 1024]" in result.stdout
    by_torch = run_cli("evaluate", "--dataset", "generic", "--root", dataset, "--weights", out, "--pose", "none")
    by_onnx = run_cli("evaluate", "--dataset", "generic", "--root", dataset, "--weights", onnx_path, "--pose", "none")
    assert by_onnx.code == 0, by_onnx.stderr
    assert _metrics(by_onnx.stdout, "plain") == pytest.approx(_metrics(by_torch.stdout, "plain"), abs=0.01)


@pytest.mark.slow
def test_resume_trains_on_from_the_last_epoch(trained, dataset, tmp_path):
    out, _ = trained
    copy = tmp_path / "more.pt"
    copy.write_bytes(out.read_bytes())
    result = run_cli(
        "train",
        "--dataset",
        "generic",
        "--root",
        dataset,
        "--out",
        copy,
        "--epochs",
        "9",
        "--eval-every",
        "0",
        "--resume",
        *TRAIN_ARGS,
    )
    assert result.code == 0, result.stderr
    assert "no optimizer state" in result.stderr  # a final checkpoint: continues with a fresh optimizer
    _, meta = load_checkpoint(copy)
    assert [h["epoch"] for h in meta["history"]] == list(range(1, 10))


@pytest.mark.slow
@pytest.mark.parametrize("as_onnx", [False, True])
def test_ingest_uses_the_trained_checkpoint_and_its_onnx_export(trained, tmp_path, lab_cam0, as_onnx):
    out, _ = trained
    weights = out
    if as_onnx:
        weights = tmp_path / "model.onnx"
        assert run_cli("export", "--weights", out, "--onnx", weights).code == 0
    db = tmp_path / "lab.db"
    result = run_cli(
        "ingest", lab_cam0, "--db", db, "--duration", "2", "--detector", _require(POSE_DETECTOR), "--reid", weights
    )
    assert result.code == 0, result.stderr
    con = sqlite3.connect(db)
    name, dims = con.execute("SELECT name, dims FROM models").fetchone()
    sizes = {row[0] for row in con.execute("SELECT length(vector) FROM embeddings")}
    count = con.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    con.close()
    assert name == ("model" if as_onnx else "jointloss-resnet18-generic") and dims == 1024
    assert count > 0 and sizes == {1024 * 4}


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--dataset", "generic", "--root", "{missing}", "--out", "{tmp}/m.pt"], "does not exist"),
        (["train", "--dataset", "market1501", "--root", "{data}", "--out", "{tmp}/m.pt"], "not a Market-1501 folder"),
        (["train", "--dataset", "generic", "--root", "{data}", "--out", "{tmp}/m.pt", "--resume"], "start without"),
        (["train", "--dataset", "generic", "--root", "{data}", "--out", "{tmp}"], "is a folder"),
        (
            ["train", "--dataset", "generic", "--root", "{data}", "--out", "{tmp}/m.pt", "--no-global", "--no-parts"],
            "no branch",
        ),
        (["train", "--dataset", "generic", "--root", "{data}", "--out", "{tmp}/m.pt", "--parts", "5"], "parts"),
        (
            ["train", "--dataset", "generic", "--root", "{data}", "--out", "{tmp}/m.pt", "--batch-p", "40"],
            "more than the 16 training identities",
        ),
        (
            ["train", "--dataset", "generic", "--root", "{data}", "--out", "{tmp}/m.pt", "--input-size", "250x100"],
            "multiples of 16",
        ),
        (["evaluate", "--dataset", "generic", "--root", "{data}", "--weights", "{tmp}/none.pt"], "does not exist"),
        (["export", "--weights", "{tmp}/none.pt", "--onnx", "{tmp}/x.onnx"], "does not exist"),
        (["export", "--weights", "{tmp}/x.onnx", "--onnx", "{tmp}/y.onnx"], "already an exported model"),
        (["export", "--weights", "{tmp}/garbage.pt", "--onnx", "{tmp}/y.onnx"], "could not be read"),
        (["export", "--onnx", "{tmp}/y.onnx", "--ir", "{tmp}/y.xml"], "exactly one of"),
        (["export", "--ir", "{tmp}/y.bin"], "must name the IR's .xml"),
        (
            [
                "train",
                "--dataset",
                "generic",
                "--root",
                "{data}",
                "--out",
                "{tmp}/m.pt",
                "--arch",
                "osnet-omz-0286",
                "--input-size",
                "128x64",
            ],
            "256x128 inputs only",
        ),
        (["train", "--dataset", "generic", "--root", "{data}", "--out", "{tmp}/m.pt", "--wise-ft", "1.5"], "1.5"),
    ],
)
def test_user_mistakes_give_one_clear_line(args, message, dataset, tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    existing = tmp_path / "m.pt"
    fill = {"missing": tmp_path / "missing", "tmp": tmp_path, "data": dataset}
    result = run_cli(*[a.format(**fill) for a in args])
    assert result.code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.error_lines) == 1 and message in result.error_lines[0], result.stderr
    assert not existing.exists()


def test_the_shipped_checkpoint_exports_to_an_ir_that_encodes_like_the_shipped_ir(tmp_path):
    import numpy as np

    from models.default_model import default_model_ir
    from models.encoders import load_encoder

    out = tmp_path / "again.xml"
    result = run_cli("export", "--ir", out)
    assert result.code == 0, result.stderr
    assert "OpenVINO agrees with PyTorch" in result.stdout and out.with_suffix(".bin").is_file()
    shipped, again = load_encoder(default_model_ir()), load_encoder(out)
    assert (again.name, again.dims, again.descriptor_layout, again.clustering_threshold) == (
        shipped.name,
        shipped.dims,
        shipped.descriptor_layout,
        shipped.clustering_threshold,
    )
    crops = [np.random.default_rng(i).integers(0, 256, (200 + 10 * i, 90, 3), dtype=np.uint8) for i in range(4)]
    assert np.allclose(again.encode(crops), shipped.encode(crops), atol=1e-3)


def test_existing_checkpoint_is_not_overwritten_without_resume(dataset, tmp_path):
    out = tmp_path / "m.pt"
    out.write_bytes(b"precious")
    result = run_cli("train", "--dataset", "generic", "--root", dataset, "--out", out, *TRAIN_ARGS)
    assert result.code == 2 and "--resume" in result.error_lines[0]
    assert out.read_bytes() == b"precious"


@pytest.mark.slow
def test_distillation_from_a_real_teacher_on_two_datasets_caches_the_teacher_once(dataset, tmp_path, tmp_path_factory):
    from tests.conftest import OSNET

    teacher = _require(OSNET)
    other = write_generic_dataset(tmp_path_factory.mktemp("other"), train_ids=6, test_ids=2, per_camera=2)
    out = tmp_path / "student.pt"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = [
        "train",
        "--dataset",
        "generic",
        "--root",
        dataset,
        "--extra-train",
        f"generic:{other}",
        "--teacher",
        teacher,
        "--distill-weight",
        "2",
        "--out",
        out,
        "--iterations-per-epoch",
        "2",
        "--eval-every",
        "0",
        *TRAIN_ARGS,
    ]
    args[args.index("resnet18")] = "mobilenet_v2"
    first = run_cli(*args, "--epochs", "1", env=env)
    assert first.code == 0, first.stderr
    caches = list((tmp_path / "cache" / "reid-app" / "teachers").glob("teacher-osnet_x0_25_msmt17-*.npz"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    _, meta = load_checkpoint(out)
    assert meta["teachers"][0].startswith("osnet_x0_25_msmt17") and "generic train" in meta["training_data"]
    assert meta["config"]["num_classes"] == 16 + 6 and meta["loss"]["distill_weight"] == 2.0
    assert meta["history"][0]["kd_pkt"] > 0 and meta["history"][0]["kd_sp"] > 0
    resumed = run_cli(*args, "--epochs", "2", "--resume", env=env)
    assert resumed.code == 0, resumed.stderr
    assert caches[0].stat().st_mtime_ns == stamp  # every teacher vector came from the cache
    assert [h["epoch"] for h in load_checkpoint(out)[1]["history"]] == [1, 2]


def test_mobilenet_without_its_imagenet_file_says_where_to_put_it(dataset, tmp_path):
    args = [a for a in TRAIN_ARGS if a != "--no-pretrained"]
    args[args.index("resnet18")] = "mobilenet_v2"
    result = run_cli(
        "train",
        "--dataset",
        "generic",
        "--root",
        dataset,
        "--out",
        tmp_path / "m.pt",
        *args,
        env={"REID_APP_WEIGHTS": str(tmp_path)},
    )
    assert result.code == 2 and "mobilenet_v2_imagenet_features.pt" in result.error_lines[0], result.stderr
