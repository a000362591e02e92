"""Which track similarity finds a person's tracks in other cameras better: ``mean`` descriptor or ``max`` over
samples (with and without k-reciprocal re-ranking)?

    python benchmarks/track_similarity.py --db lab.db          # a database holding the four lab cameras
    python benchmarks/track_similarity.py --db lab.db --lab ../shared/data/videos/lab_4cam

Ground truth comes from the lab cameras' calibration (``tests/lab_geometry.py``): two tracks of different cameras
are the same person when their floor positions agree at the same instants. Every track with at least one labelled
match is a query; the gallery is every labelled track of the other cameras. Reports CMC rank-1 and mAP (as in
``models.metrics``) per setting. Make the database with:

    reid-app ingest ../shared/data/videos/lab_4cam/cam{0,1,2,3}.mp4 --db lab.db \\
        --detector ../shared/weights/yolov8n-pose_int8_openvino_model --reid ../shared/weights/osnet_x0_25_msmt17.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def average_precision(relevant: list[bool]) -> float:
    """AP of one ranked list of relevance flags (0 when nothing is relevant)."""
    hits = np.cumsum(relevant)
    precision = hits / np.arange(1, len(relevant) + 1)
    return float((precision * np.array(relevant)).sum() / max(1, hits[-1] if len(hits) else 0))


def evaluate(searcher, labels, similarity: str, rerank: bool) -> tuple[float, float, float, int]:
    """(rank-1 %, mAP %, mean margin, queries) over the labelled track pairs.

    The margin of a query is its worst true match's score minus its best false match's score (cosine; > 0 means
    a threshold separates them): finer than rank-1 and mAP when those saturate."""
    from pipelines.matching.search import SearchOptions

    queries = sorted({t for pair in labels for t in pair})
    rank1, aps, margins, used = [], [], [], 0
    for q in queries:
        gallery = {b if a == q else a: same for (a, b), same in labels.items() if q in (a, b)}
        if not any(gallery.values()):
            continue
        options = SearchOptions(top_k=1000, track_similarity=similarity, rerank=rerank, audit=False)
        results = [r for r in searcher.by_track(q, options) if r.track_id in gallery]
        relevant = [gallery[r.track_id] for r in results]
        true_scores = [r.score for r in results if gallery[r.track_id]]
        false_scores = [r.score for r in results if not gallery[r.track_id]] or [-1.0]
        margins.append(min(true_scores) - max(false_scores))
        rank1.append(relevant[0])
        aps.append(average_precision(relevant))
        used += 1
    return 100 * float(np.mean(rank1)), 100 * float(np.mean(aps)), float(np.mean(margins)), used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, type=Path, help="database holding the lab cameras cam0..cam3")
    parser.add_argument(
        "--lab",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "videos" / "lab_4cam",
        help="folder with calib_camN.json",
    )
    args = parser.parse_args()

    from pipelines.matching.search import Searcher
    from storage.database import open_database
    from tests.lab_geometry import same_person_pairs

    labels = same_person_pairs(args.db, args.lab)
    db = open_database(args.db, create=False)
    searcher = Searcher(db)
    print(f"{len(labels)} labelled cross-camera track pairs, {sum(labels.values())} of them the same person")
    print(f"{'track similarity':<18}{'re-rank':<9}{'queries':>8}{'rank-1':>9}{'mAP':>8}{'margin':>9}")
    for similarity in ("mean", "max"):
        for rerank in (False, True):
            r1, m_ap, margin, n = evaluate(searcher, labels, similarity, rerank)
            print(f"{similarity:<18}{'yes' if rerank else 'no':<9}{n:>8}{r1:>8.1f}%{m_ap:>7.1f}%{margin:>9.3f}")
    db.close()


if __name__ == "__main__":
    main()
