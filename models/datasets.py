"""Readers for the standard re-id datasets: each gives ``(image path, pid, camid)`` samples in train/query/gallery.

Layouts (``root`` may be the dataset folder itself or the folder that contains it):
    * ``market1501`` (Zheng et al. 2015): ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with files
      ``PPPP_cCsS_FFFFFF_NN.jpg``. pid ``-1`` marks junk images and pid ``0`` distractors; both stay in the
      gallery (``models.metrics`` ignores junk and counts distractors as negatives) and are dropped from training.
    * ``dukemtmc`` (DukeMTMC-reID, Ristani et al. 2016 / Zheng et al. 2017): same folders, ``PPPP_cC_fFFFFFFF.jpg``.
    * ``cuhk03`` (Li et al. 2014) under the new protocol of Zhong et al. 2017 (767 training / 700 test ids),
      as distributed in CUHK03-NP: ``labeled/`` or ``detected/`` each with the three Market-style folders of
      ``PPPP_cC_N.png`` files; pick the subset with ``subset="labeled"`` (default) or ``"detected"``.
    * ``msmt17`` (Wei et al. 2018): ``list_train.txt``, ``list_val.txt`` (both used for training),
      ``list_query.txt``, ``list_gallery.txt`` with lines ``PPPP/PPPP_SSS_CC_....jpg PID``, images under
      ``train/`` and ``test/`` (V1) or ``mask_train_v2/`` and ``mask_test_v2/`` (V2); the camera is the name's
      third field.
    * ``cuhk03-views``: the two-view CUHK03 layout of ``../shared/data/reid/cuhk03``: ``train/`` and ``val/`` of
      ``NNNN_KK.jpg`` files (NNNN identity, KK 00-04 view A, 05-09 view B). Train = ``train/``; query = ``val/``
      view A, gallery = ``val/`` view B (the standard single-shot check). The splits' identity numbers restart, so
      val pids are offset by 100000 to keep them apart from train pids.
    * ``cuhk01`` (Li et al. 2012): one folder of ``NNNNIII.png`` (NNNN identity, III 001-002 camera A, 003-004
      camera B). Query = camera A, gallery = camera B; train = every image (use it as a training set, or as a
      test set for models that never saw it, not both).
    * ``generic``: ``<root>/{train,query,gallery}/<pid>/<camid>_*.jpg``, or ``<root>/{train,query,gallery}.csv``
      with a ``path,pid,camid`` header (paths relative to the CSV's folder).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from common.errors import DatasetError, setting

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True)
class ReidSample:
    """One labelled person image.

    Attributes:
        path: the image file.
        pid: person identity as given by the dataset (``-1`` junk and ``0`` distractors in Market-1501).
        camid: camera index as given by the dataset.
    """

    path: Path
    pid: int
    camid: int


@dataclass
class ReidDataset:
    """A dataset's standard splits.

    Attributes:
        name: reader name (``market1501``...).
        root: the folder the images were read from.
        train, query, gallery: samples of each split.
    """

    name: str
    root: Path
    train: list[ReidSample] = field(default_factory=list)
    query: list[ReidSample] = field(default_factory=list)
    gallery: list[ReidSample] = field(default_factory=list)

    @property
    def num_train_pids(self) -> int:
        """Identities in the training split."""
        return len({s.pid for s in self.train})

    def summary(self) -> list[tuple[str, int, int, int]]:
        """``(split, identities, images, cameras)`` per split, for reports."""
        return [
            (name, len({s.pid for s in split}), len(split), len({s.camid for s in split}))
            for name, split in (("train", self.train), ("query", self.query), ("gallery", self.gallery))
        ]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _find_root(root: Path, required: tuple[str, ...], what: str) -> Path:
    """``root`` or its only/first child holding all ``required`` entries."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset root {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is not a folder")
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    for candidate in candidates:
        if all((candidate / r).exists() for r in required):
            return candidate
    raise DatasetError(
        f"{root} is not a {what} folder: expected {', '.join(required)} in it (or in one of its sub-folders)"
    )


def _named_samples(
    folder: Path, pattern: re.Pattern, camera: Callable[[int], int], pid_offset: int = 0, example: str = ""
) -> list[ReidSample]:
    samples = []
    for path in _images(folder):
        match = pattern.match(path.name)
        if match is None:
            raise DatasetError(
                f"{path} does not follow the dataset's file naming (expected e.g. {example}); is "
                f"{setting('dataset')} right?"
            )
        samples.append(ReidSample(path, int(match.group(1)) + pid_offset, camera(int(match.group(2)))))
    return samples


def _market_style(folder: Path, pattern: re.Pattern, keep_junk: bool) -> list[ReidSample]:
    samples = _named_samples(folder, pattern, int, example="0002_c1s1_000451_03.jpg")
    return samples if keep_junk else [s for s in samples if s.pid > 0]


_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
_MARKET_DIRS = ("bounding_box_train", "query", "bounding_box_test")


def _read_market_folders(name: str, root: Path, what: str) -> ReidDataset:
    base = _find_root(root, _MARKET_DIRS, what)
    train, query, gallery = (base / d for d in _MARKET_DIRS)
    return ReidDataset(
        name,
        base,
        _market_style(train, _MARKET_NAME, keep_junk=False),
        _market_style(query, _MARKET_NAME, keep_junk=False),
        _market_style(gallery, _MARKET_NAME, keep_junk=True),
    )


def read_market1501(root: str | Path) -> ReidDataset:
    """Market-1501 (see the module docstring for the layout).

    Raises:
        DatasetError: missing root or folders, or a file name not in Market-1501's format.
    """
    return _read_market_folders("market1501", Path(root), "Market-1501")


def read_dukemtmc(root: str | Path) -> ReidDataset:
    """DukeMTMC-reID (same folder layout as Market-1501).

    Raises:
        DatasetError: as :func:`read_market1501`.
    """
    return _read_market_folders("dukemtmc", Path(root), "DukeMTMC-reID")


def read_cuhk03(root: str | Path, subset: str = "labeled") -> ReidDataset:
    """CUHK03 under the new (767/700) protocol, CUHK03-NP layout.

    Args:
        subset: ``labeled`` (hand-drawn boxes) or ``detected`` (DPM boxes).

    Raises:
        DatasetError: unknown subset, missing folders or unexpected file names.
    """
    if subset not in ("labeled", "detected"):
        raise DatasetError(f"CUHK03 subset must be 'labeled' or 'detected', not {subset!r}")
    base = _find_root(Path(root), (f"{subset}/bounding_box_train",), f"CUHK03-NP ({subset})")
    dataset = _read_market_folders("cuhk03", base / subset, f"CUHK03-NP {subset}")
    dataset.name = f"cuhk03-{subset}"
    return dataset


def _read_msmt_list(base: Path, image_dir: Path, list_name: str) -> list[ReidSample]:
    samples = []
    list_path = base / list_name
    for lineno, line in enumerate(list_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rel, pid = line.split()
            camid = int(Path(rel).name.split("_")[2])
            samples.append(ReidSample(image_dir / rel, int(pid), camid))
        except (ValueError, IndexError):
            raise DatasetError(f"{list_path}:{lineno}: expected 'PPPP/PPPP_SSS_CC_....jpg PID', got {line!r}") from None
    return samples


def read_msmt17(root: str | Path) -> ReidDataset:
    """MSMT17 V1 or V2 (see the module docstring).

    Raises:
        DatasetError: missing list files or image folders, or malformed list lines.
    """
    base = _find_root(Path(root), ("list_train.txt", "list_query.txt", "list_gallery.txt"), "MSMT17")
    for train_dir, test_dir in (("train", "test"), ("mask_train_v2", "mask_test_v2")):
        if (base / train_dir).is_dir() and (base / test_dir).is_dir():
            break
    else:
        raise DatasetError(
            f"{base} has the MSMT17 lists but neither train/ + test/ nor mask_train_v2/ + mask_test_v2/ image folders"
        )
    train = _read_msmt_list(base, base / train_dir, "list_train.txt")
    if (base / "list_val.txt").exists():
        train += _read_msmt_list(base, base / train_dir, "list_val.txt")
    return ReidDataset(
        "msmt17",
        base,
        train,
        _read_msmt_list(base, base / test_dir, "list_query.txt"),
        _read_msmt_list(base, base / test_dir, "list_gallery.txt"),
    )


def _read_generic_csv(path: Path) -> list[ReidSample]:
    samples = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"path", "pid", "camid"} <= set(reader.fieldnames):
            raise DatasetError(f"{path} must have a header line 'path,pid,camid'")
        for lineno, row in enumerate(reader, 2):
            try:
                samples.append(ReidSample(path.parent / row["path"], int(row["pid"]), int(row["camid"])))
            except (TypeError, ValueError):
                raise DatasetError(f"{path}:{lineno}: pid and camid must be integers, got {row}") from None
    return samples


def _read_generic_folder(folder: Path) -> list[ReidSample]:
    samples = []
    for pid_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            pid = int(pid_dir.name)
        except ValueError:
            raise DatasetError(f"{pid_dir}: identity folders must be named by an integer pid") from None
        for path in _images(pid_dir):
            try:
                camid = int(path.name.split("_", 1)[0])
            except ValueError:
                raise DatasetError(f"{path}: image names must start with '<camid>_' (an integer)") from None
            samples.append(ReidSample(path, pid, camid))
    return samples


def read_generic(root: str | Path, optional_train: bool = False) -> ReidDataset:
    """The generic layout: per-split identity folders or per-split CSV files (module docstring).

    Raises:
        DatasetError: neither layout found, or malformed folder names, file names or CSV rows.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} does not exist or is not a folder")
    needed = SPLITS[1:] if optional_train else SPLITS
    if all((root / f"{s}.csv").is_file() for s in needed):
        splits = [_read_generic_csv(root / f"{s}.csv") if (root / f"{s}.csv").is_file() else [] for s in SPLITS]
    elif all((root / s).is_dir() for s in needed):
        splits = [_read_generic_folder(root / s) if (root / s).is_dir() else [] for s in SPLITS]
    else:
        raise DatasetError(
            f"{root} is not a generic re-id dataset: expected train/, query/, gallery/ folders of "
            f"<pid>/<camid>_*.jpg, or train.csv, query.csv, gallery.csv with 'path,pid,camid'"
        )
    missing = [p.path for split in splits for p in split if not p.path.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} listed image(s) do not exist, e.g. {missing[0]}")
    return ReidDataset("generic", root, *splits)


_CUHK03_VIEW_NAME = re.compile(r"^(\d+)_(\d\d)\.(jpg|jpeg|png)$", re.IGNORECASE)
_CUHK01_NAME = re.compile(r"^(\d{4})(\d{3})\.(png|jpg|bmp)$", re.IGNORECASE)
VAL_PID_OFFSET = 100000


def read_cuhk03_views(root: str | Path) -> ReidDataset:
    """CUHK03 in the two-view ``train/`` + ``val/`` layout (module docstring).

    Raises:
        DatasetError: missing folders or unexpected file names.
    """
    base = _find_root(Path(root), ("train", "val"), "CUHK03 (train/ + val/ of NNNN_KK.jpg)")
    view = lambda kk: 0 if kk < 5 else 1  # noqa: E731
    train = _named_samples(base / "train", _CUHK03_VIEW_NAME, view, 0, "0007_03.jpg")
    val = _named_samples(base / "val", _CUHK03_VIEW_NAME, view, VAL_PID_OFFSET, "0007_03.jpg")
    return ReidDataset("cuhk03-views", base, train, [s for s in val if s.camid == 0], [s for s in val if s.camid == 1])


def read_cuhk01(root: str | Path) -> ReidDataset:
    """CUHK01 (module docstring).

    Raises:
        DatasetError: missing folder, no images or unexpected file names.
    """
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"dataset root {base} does not exist or is not a folder")
    samples = _named_samples(base, _CUHK01_NAME, lambda iii: 0 if iii <= 2 else 1, 0, "0001001.png")
    return ReidDataset(
        "cuhk01", base, list(samples), [s for s in samples if s.camid == 0], [s for s in samples if s.camid == 1]
    )


def combine_training_sets(datasets: list[ReidDataset]) -> list[ReidSample]:
    """The train splits of several datasets as one, identities kept apart (pid ``p`` of dataset ``i`` becomes
    ``i * 10_000_000 + p``) and cameras too (``i * 1000 + camid``).

    Raises:
        DatasetError: a dataset without training images.
    """
    combined = []
    for i, data in enumerate(datasets):
        if not data.train:
            raise DatasetError(f"{data.name} at {data.root} has no training images")
        combined += [ReidSample(s.path, i * 10_000_000 + s.pid, i * 1000 + s.camid) for s in data.train]
    return combined


READERS: dict[str, Callable[..., ReidDataset]] = {
    "market1501": read_market1501,
    "dukemtmc": read_dukemtmc,
    "cuhk03": read_cuhk03,
    "cuhk03-labeled": lambda root: read_cuhk03(root, "labeled"),
    "cuhk03-detected": lambda root: read_cuhk03(root, "detected"),
    "msmt17": read_msmt17,
    "cuhk03-views": read_cuhk03_views,
    "cuhk01": read_cuhk01,
    "generic": read_generic,
}


def load_dataset(name: str, root: str | Path, splits: tuple[str, ...] = SPLITS) -> ReidDataset:
    """Read dataset ``name`` (a key of :data:`READERS`) from ``root``.

    Args:
        splits: the splits that must hold images (evaluation needs only ``("query", "gallery")``; the generic
            layout may then lack its train folder or CSV).

    Raises:
        DatasetError: unknown name, wrong root or layout, or an empty required split.
    """
    reader = READERS.get(name.lower())
    if reader is None:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(READERS)}")
    dataset = reader(root, optional_train="train" not in splits) if reader is read_generic else reader(root)
    for split in splits:
        if not getattr(dataset, split):
            raise DatasetError(f"the {split} split of {dataset.name} at {dataset.root} has no images")
    return dataset
