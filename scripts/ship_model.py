"""Convert a 'reid-app train' checkpoint into the shipped default model: float16 tensors, no classifiers, plus the
calibrated identity-clustering threshold.

    python scripts/ship_model.py --weights run.pt --threshold 0.62 [--metrics-json eval.json]

Writes models/pretrained/<models.default_model.DEFAULT_MODEL_FILE> (at most 12 MB is the budget).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from models.checkpoint import load_checkpoint, save_checkpoint
from models.default_model import DEFAULT_MODEL_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="checkpoint written by 'reid-app train'")
    parser.add_argument("--threshold", type=float, required=True,
                        help="identity-clustering threshold calibrated on the lab cameras (cosine)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "models" / "pretrained" /
                                             DEFAULT_MODEL_FILE))
    args = parser.parse_args()
    state_dict, metadata = load_checkpoint(args.weights)
    shipped = {k: (v.half() if v.is_floating_point() else v) for k, v in state_dict.items() if "classifier" not in k}
    config = dict(metadata["config"], num_classes=0)
    metadata = dict(metadata, config=config, clustering_threshold=args.threshold, storage="float16")
    save_checkpoint(args.out, shipped, metadata)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {size / 1e6:.1f} MB, {len(shipped)} tensors, threshold {args.threshold}")
    print(json.dumps({k: metadata.get(k) for k in ("name", "training_data", "teachers", "metrics")}, indent=1))


if __name__ == "__main__":
    main()
