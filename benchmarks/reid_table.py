"""The model card's evaluation table: several re-id models on one dataset's query/gallery split, plain and
k-reciprocal re-ranked, plus the branch ablations of joint-loss checkpoints.

    python benchmarks/reid_table.py --dataset cuhk03-views --root ../shared/data/reid/cuhk03 \\
        --models default,../shared/weights/person-reidentification-retail-0286,...

For a joint-loss model (``default`` or a checkpoint) two more rows evaluate the same network's global descriptor
alone and its part descriptors alone (each L2-normalised): the papers' "global only" / "parts only" comparison at
inference, not separately trained networks. Prints a Markdown table (rank-1, rank-5, mAP, re-ranked rank-1 / mAP).
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

        out = self.encoder.encode(crops, part_boxes)[:, self.start:self.stop]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="cuhk03-views")
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "reid" / "cuhk03"))
    parser.add_argument("--models", required=True, help="comma-separated: 'default' or weights paths")
    parser.add_argument("--no-branches", action="store_true", help="skip the global-only / parts-only rows")
    args = parser.parse_args()

    from models.datasets import load_dataset
    from models.encoders import JointLossEncoder, load_encoder
    from models.evaluation import evaluate_encoder

    data = load_dataset(args.dataset, args.root, ("query", "gallery"))
    print(f"{args.dataset}: {len(data.query)} query, {len(data.gallery)} gallery images; fixed part boxes "
          f"(no pose model) for joint-loss networks trained with stripes\n")
    print("| encoder | rank-1 | rank-5 | mAP | re-ranked rank-1 | re-ranked mAP | images/s |")
    print("|---|---|---|---|---|---|---|")
    for spec in (m.strip() for m in args.models.split(",") if m.strip()):
        encoder = load_encoder(None if spec == "default" else spec)
        variants = [(encoder.name + (" (shipped default)" if spec == "default" else ""), encoder)]
        if isinstance(encoder, JointLossEncoder) and not args.no_branches:
            config = encoder.net.config
            if config.use_global and config.use_parts:
                variants.append((None, _BranchEncoder(encoder, 0, config.global_dim, "global branch only")))
                variants.append((None, _BranchEncoder(encoder, config.global_dim, config.dims, "part branches only")))
        for label, enc in variants:
            report = evaluate_encoder(enc, data, rerank=True)
            plain, rr = report.result.as_dict(), report.reranked.as_dict()
            speed = (report.num_query + report.num_gallery) / max(report.seconds, 1e-9)
            print(f"| {label or enc.name} | {plain['rank1']:.1f} | {plain['rank5']:.1f} | {plain['mAP']:.1f} | "
                  f"{rr['rank1']:.1f} | {rr['mAP']:.1f} | {speed:.0f} |", flush=True)


if __name__ == "__main__":
    main()
