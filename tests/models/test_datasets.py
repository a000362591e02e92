from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import DatasetError
from models.datasets import load_dataset, read_cuhk03


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 8, 3), 127, np.uint8))


def _market_tree(root: Path, suffix=".jpg") -> Path:
    for name in ("0002_c1s1_000451_03", "0002_c2s1_000551_01", "0007_c3s1_000101_02"):
        _touch(root / "bounding_box_train" / f"{name}{suffix}")
    _touch(root / "query" / f"0005_c1s1_001051_00{suffix}")
    for name in ("0005_c2s1_001101_01", "0000_c1s1_000000_01", "-1_c3s1_000200_04", "0009_c6s1_002001_02"):
        _touch(root / "bounding_box_test" / f"{name}{suffix}")
    return root


def test_market1501_reader_gives_standard_splits_with_junk_and_distractors_in_the_gallery(tmp_path):
    root = _market_tree(tmp_path / "Market-1501-v15.09.15")
    data = load_dataset("market1501", tmp_path)  # the folder containing the dataset works too
    assert data.root == root
    assert [(s.pid, s.camid) for s in data.train] == [(2, 1), (2, 2), (7, 3)]
    assert data.num_train_pids == 2
    assert [(s.pid, s.camid) for s in data.query] == [(5, 1)]
    assert sorted((s.pid, s.camid) for s in data.gallery) == [(-1, 3), (0, 1), (5, 2), (9, 6)]
    assert all(s.path.is_file() for s in data.train + data.query + data.gallery)
    assert data.summary()[0] == ("train", 2, 3, 3)


def test_dukemtmc_reader(tmp_path):
    for split, name in (
        ("bounding_box_train", "0001_c2_f0046182"),
        ("bounding_box_train", "0001_c5_f0051341"),
        ("query", "0005_c2_f0046985"),
        ("bounding_box_test", "0005_c5_f0051781"),
    ):
        _touch(tmp_path / split / f"{name}.jpg")
    data = load_dataset("dukemtmc", tmp_path)
    assert [(s.pid, s.camid) for s in data.train] == [(1, 2), (1, 5)]
    assert [(s.pid, s.camid) for s in data.gallery] == [(5, 5)]


@pytest.mark.parametrize("subset", ["labeled", "detected"])
def test_cuhk03_new_protocol_reader_picks_the_subset(tmp_path, subset):
    for sub, pid in (("labeled", 1), ("detected", 2)):
        _touch(tmp_path / "cuhk03-np" / sub / "bounding_box_train" / f"{pid:04d}_c1_1.png")
        _touch(tmp_path / "cuhk03-np" / sub / "query" / f"{pid + 10:04d}_c1_1.png")
        _touch(tmp_path / "cuhk03-np" / sub / "bounding_box_test" / f"{pid + 10:04d}_c2_3.png")
    data = load_dataset(f"cuhk03-{subset}", tmp_path)
    expected = 1 if subset == "labeled" else 2
    assert data.name == f"cuhk03-{subset}"
    assert [s.pid for s in data.train] == [expected] and data.gallery[0].camid == 2
    assert read_cuhk03(tmp_path / "cuhk03-np").train[0].pid == 1  # labeled by default


def test_msmt17_reader_uses_the_lists_and_merges_val_into_train(tmp_path):
    base = tmp_path / "MSMT17_V1"
    lines = {
        "list_train.txt": ["0000/0000_000_01_0303morning_0015_0.jpg 0"],
        "list_val.txt": ["0001/0001_004_07_0303morning_0020_1.jpg 1"],
        "list_query.txt": ["0000/0000_001_05_0303noon_0100_0.jpg 0"],
        "list_gallery.txt": ["0000/0000_002_12_0303noon_0200_1.jpg 0", ""],
    }
    for name, rows in lines.items():
        base.mkdir(exist_ok=True)
        (base / name).write_text("\n".join(rows) + "\n")
        folder = "train" if name in ("list_train.txt", "list_val.txt") else "test"
        for row in rows:
            if row:
                _touch(base / folder / row.split()[0])
    data = load_dataset("msmt17", tmp_path)
    assert [(s.pid, s.camid) for s in data.train] == [(0, 1), (1, 7)]
    assert data.query[0].camid == 5 and data.gallery[0].camid == 12
    assert data.gallery[0].path == base / "test" / "0000/0000_002_12_0303noon_0200_1.jpg"
    (base / "list_query.txt").write_text("not a valid line\n")
    with pytest.raises(DatasetError, match="list_query.txt:1"):
        load_dataset("msmt17", tmp_path)


def test_generic_reader_folder_and_csv_layouts(tmp_path):
    folders = tmp_path / "folders"
    _touch(folders / "train" / "3" / "1_a.jpg")
    _touch(folders / "train" / "3" / "2_b.jpg")
    _touch(folders / "query" / "8" / "1_q.png")
    _touch(folders / "gallery" / "8" / "2_g.jpg")
    data = load_dataset("generic", folders)
    assert [(s.pid, s.camid) for s in data.train] == [(3, 1), (3, 2)]
    assert (data.query[0].pid, data.gallery[0].camid) == (8, 2)

    csvs = tmp_path / "csvs"
    _touch(csvs / "img" / "a.jpg")
    _touch(csvs / "img" / "b.jpg")
    for split in ("train", "query", "gallery"):
        (csvs / f"{split}.csv").write_text("path,pid,camid\nimg/a.jpg,4,1\nimg/b.jpg,4,2\n")
    data = load_dataset("generic", csvs)
    assert [(s.path.name, s.pid, s.camid) for s in data.query] == [("a.jpg", 4, 1), ("b.jpg", 4, 2)]
    (csvs / "query.csv").write_text("file,id\nimg/a.jpg,4\n")
    with pytest.raises(DatasetError, match="path,pid,camid"):
        load_dataset("generic", csvs)


@pytest.mark.parametrize("name", ["market1501", "dukemtmc", "cuhk03", "msmt17", "generic"])
def test_wrong_root_or_layout_gives_a_clear_error(tmp_path, name):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(name, tmp_path / "missing")
    _touch(tmp_path / "somewhere" / "photo.jpg")
    with pytest.raises(DatasetError, match="not a"):
        load_dataset(name, tmp_path / "somewhere")


def test_market_file_names_that_do_not_parse_and_empty_splits_are_reported(tmp_path):
    root = _market_tree(tmp_path)
    _touch(root / "query" / "holiday.jpg")
    with pytest.raises(DatasetError, match="holiday.jpg"):
        load_dataset("market1501", root)
    (root / "query" / "holiday.jpg").unlink()
    for f in (root / "query").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="query split .* has no images"):
        load_dataset("market1501", root)
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("imagenet", root)
