"""The model card's evaluation table: several re-id models on one dataset's query/gallery split, plain and
k-reciprocal re-ranked, plus the branch ablations of joint-loss models.

    python benchmarks/reid_table.py --dataset cuhk03-views --root ../shared/data/reid/cuhk03 \\
        --models default,../shared/weights/person-reidentification-retail-0286,...

For a joint-loss model (``default``, a checkpoint, or an IR/ONNX export that records its descriptor layout) two more
rows evaluate the same network's global descriptor alone and its part descriptors alone (each L2-normalised): the
papers' "global only" / "parts only" comparison at inference, not separately trained networks. Part boxes come from
COCO-17 keypoints of the query/gallery images (``--pose auto``: the YOLO pose model in the weights folders, computed
once and cached like training's) or fixed stripes (``--pose none``). Prints a Markdown table (rank-1, rank-5, mAP,
re-ranked rank-1 / mAP, images/s of the evaluation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _BranchEncoder:
    """A joint-loss encoder's descriptor restricted to columns ``[start, stop)`` (re-normalised)."""

    def __init__(self, encoder, start: int, stop: int, label: str):
        self.encoder, self.start, self.stop = encoder, start, stop
        self.name = f"{encoder.name} ({label})"
        self.dims = stop - start
        self.num_parts = encoder.num_parts

    def encode(self, crops, part_boxes=None):
        import numpy as np

        out = self.encoder.encode(crops, part_boxes)[:, self.start : self.stop]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _keypoints(data, pose: str):
    """Cached COCO-17 keypoints of the query and gallery images, or ``(None, None)`` with ``--pose none``."""
    if pose == "none":
        return None, None
    from reid_app.console import stderr_console
    from reid_app.training_cli import _crop_pose
    from reid_app.training_cli import _keypoints as cached_keypoints

    tag, estimate = _crop_pose(pose, "cpu")
    console = stderr_console()
    return (
        cached_keypoints(data.query, data.root, tag, estimate, console, "query"),
        cached_keypoints(data.gallery, data.root, tag, estimate, console, "gallery"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="cuhk03-views")
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "reid" / "cuhk03"))
    parser.add_argument("--models", required=True, help="comma-separated: 'default' or weights paths")
    parser.add_argument("--pose", default="auto", help="auto | none | pose weights (part boxes of the images)")
    parser.add_argument("--no-branches", action="store_true", help="skip the global-only / parts-only rows")
    parser.add_argument("--no-rerank", action="store_true", help="skip k-reciprocal re-ranking")
    args = parser.parse_args()

    from models.datasets import load_dataset
    from models.encoders import load_encoder
    from models.evaluation import evaluate_encoder

    data = load_dataset(args.dataset, args.root, ("query", "gallery"))
    query_kp, gallery_kp = _keypoints(data, args.pose)
    print(
        f"{args.dataset}: {len(data.query)} query, {len(data.gallery)} gallery images; part boxes from "
        f"{'fixed stripes' if query_kp is None else 'COCO-17 keypoints'}\n"
    )
    print("| encoder | rank-1 | rank-5 | mAP | re-ranked rank-1 | re-ranked mAP | images/s |")
    print("|---|---|---|---|---|---|---|")
    for spec in (m.strip() for m in args.models.split(",") if m.strip()):
        encoder = load_encoder(None if spec == "default" else spec)
        variants = [(encoder.name + (" (shipped default)" if spec == "default" else ""), encoder)]
        layout = encoder.descriptor_layout or []
        has_parts = any(p["name"] != "global" for p in layout)
        if layout and layout[0]["name"] == "global" and has_parts and not args.no_branches:
            split = layout[0]["stop"]
            variants.append((None, _BranchEncoder(encoder, 0, split, "global branch only")))
            variants.append((None, _BranchEncoder(encoder, split, encoder.dims, "part branches only")))
        for label, enc in variants:
            report = evaluate_encoder(enc, data, query_kp, gallery_kp, rerank=not args.no_rerank)
            plain = report.result.as_dict()
            rr = report.reranked.as_dict() if report.reranked is not None else None
            speed = (report.num_query + report.num_gallery) / max(report.seconds, 1e-9)
            reranked = f"{rr['rank1']:.1f} | {rr['mAP']:.1f}" if rr else "– | –"
            print(
                f"| {label or enc.name} | {plain['rank1']:.1f} | {plain['rank5']:.1f} | {plain['mAP']:.1f} | "
                f"{reranked} | {speed:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
