"""Identity quality on the four lab cameras against their calibration ground truth, per re-id model and threshold.

    python benchmarks/identities_calibration.py                                   # the shipped default model
    python benchmarks/identities_calibration.py --reid ../shared/weights/osnet_x0_25_msmt17.onnx

Ingests the first --duration seconds of lab_4cam/cam0-3 (``reid-app ingest``, default detector), marks the four
cameras as overlapping, then clusters identities at each threshold and prints the precision and recall of
co-membership of cross-camera track pairs, as ``tests/pipelines/test_identities.py`` measures them (ground truth from
the calibration: ``tests/lab_geometry.py``). The suggested threshold is the middle of the widest run of thresholds
with precision >= 0.9 and recall >= 0.8 (the model card's calibration); it prints numbers and does not pass or fail.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LAB = ROOT.parent / "shared" / "data" / "videos" / "lab_4cam"


def co_membership(db, labels: dict) -> tuple[float, float, int]:
    """``(precision, recall, pairs joined)`` of the identities' co-membership against ``labels``."""
    from storage.identities import load_identities

    member = {t: i.id for i in load_identities(db) for t in i.track_ids}
    together = [same for (a, b), same in labels.items() if member.get(a) is not None and member.get(a) == member.get(b)]
    true_pairs = [pair for pair, same in labels.items() if same]
    joined = sum(member.get(a) is not None and member.get(a) == member.get(b) for a, b in true_pairs)
    precision = sum(together) / len(together) if together else float("nan")
    return precision, joined / max(len(true_pairs), 1), len(together)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reid", default=None, help="re-id weights [default: the shipped model]")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each camera to ingest")
    parser.add_argument("--db", default=None, help="reuse or keep this database [default: a temporary one]")
    parser.add_argument("--thresholds", default="0.30,0.35,0.40,0.45,0.50,0.55,0.60,0.65,0.70,0.75,0.80,0.85")
    args = parser.parse_args()

    from pipelines.matching.identities import cluster_identities
    from storage.database import open_database
    from storage.feedback import set_overlap
    from storage.videos import camera_ids_by_name
    from tests.lab_geometry import same_person_pairs

    db_path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "lab4.db"
    if not db_path.exists():
        command = [
            sys.executable,
            "-m",
            "reid_app.cli",
            "ingest",
            *(str(LAB / f"cam{i}.mp4") for i in range(4)),
            "--db",
            str(db_path),
            "--duration",
            str(args.duration),
        ] + (["--reid", args.reid] if args.reid else [])
        subprocess.run(command, check=True, cwd=ROOT)
    db = open_database(db_path)
    set_overlap(db, sorted(camera_ids_by_name(db).values()))
    labels = same_person_pairs(db_path, LAB)
    print(
        f"database {db_path}; {sum(labels.values())} same-person and {sum(not v for v in labels.values())} "
        f"different-person cross-camera track pairs in the ground truth"
    )
    print(f"{'threshold':>9} {'identities':>10} {'multi-cam':>9} {'precision':>9} {'recall':>7}")
    good = []
    for threshold in (float(t) for t in args.thresholds.split(",")):
        report = cluster_identities(db, threshold=threshold, reason="calibration")
        precision, recall, _ = co_membership(db, labels)
        ok = precision >= 0.9 and recall >= 0.8
        good.append((threshold, ok))
        print(
            f"{threshold:9.2f} {report.identities:10d} {report.multi_camera:9d} {precision:9.3f} {recall:7.3f}"
            + ("  ok" if ok else "")
        )
    runs, current = [], []
    for threshold, ok in good:
        if ok:
            current.append(threshold)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    if runs:
        best = max(runs, key=len)
        print(
            f"suggested threshold: {(best[0] + best[-1]) / 2:.3f} (precision >= 0.9 and recall >= 0.8 from "
            f"{best[0]:.2f} to {best[-1]:.2f})"
        )
    else:
        print("no threshold reaches precision >= 0.9 and recall >= 0.8")
    db.close()


if __name__ == "__main__":
    main()
