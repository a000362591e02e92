"""Turn a 'reid-app train' checkpoint into the shipped default model: the trainable checkpoint (float16 tensors, no
classifiers) and its OpenVINO IR (FP16 weights), both with the calibrated identity-clustering threshold.

    python scripts/ship_model.py --weights run.pt --threshold 0.62 [--part-weight 0.4]

Writes models/pretrained/<DEFAULT_MODEL_NAME>.pt, .xml and .bin (the model files' budget is 12 MB in all).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.checkpoint import file_sha256, load_checkpoint, save_checkpoint
from models.default_model import DEFAULT_MODEL_NAME
from models.encoders import build_jointloss_encoder
from models.ir_export import export_ir

BUDGET_BYTES = 12 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="checkpoint written by 'reid-app train'")
    parser.add_argument(
        "--threshold",
        type=float,
        required=True,
        help="identity-clustering threshold calibrated on the lab cameras (cosine)",
    )
    parser.add_argument(
        "--part-weight",
        type=float,
        default=None,
        help="scale of the part embeddings in the descriptor (JointLossConfig.part_weight) [default: as trained]",
    )
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME, help="model name stored with every embedding")
    parser.add_argument("--out-dir", default=str(Path(__file__).resolve().parents[1] / "models" / "pretrained"))
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    state_dict, metadata = load_checkpoint(args.weights)
    shipped = {k: (v.half() if v.is_floating_point() else v) for k, v in state_dict.items() if "classifier" not in k}
    config = dict(metadata["config"], num_classes=0)
    if args.part_weight is not None:
        config["part_weight"] = args.part_weight
    metadata = dict(metadata, name=args.name, config=config, clustering_threshold=args.threshold, storage="float16")
    checkpoint = out_dir / f"{args.name}.pt"
    save_checkpoint(checkpoint, shipped, metadata)
    encoder = build_jointloss_encoder(checkpoint)
    report = export_ir(encoder.net, out_dir / f"{args.name}.xml", args.name, args.threshold, file_sha256(checkpoint))
    total = checkpoint.stat().st_size + report.size_bytes
    print(
        f"wrote {checkpoint} ({checkpoint.stat().st_size / 1e6:.1f} MB, {len(shipped)} tensors) and {report.xml} "
        f"+ .bin ({report.size_bytes / 1e6:.1f} MB; OpenVINO agrees with PyTorch to cosine {report.min_cosine:.5f});"
        f" {total / 1e6:.1f} MB in all, threshold {args.threshold}"
    )
    if total > BUDGET_BYTES:
        raise SystemExit(f"the model files take {total / 1e6:.1f} MB, over the {BUDGET_BYTES / 1e6:.1f} MB budget")
    print(json.dumps({k: metadata.get(k) for k in ("name", "training_data", "teachers", "metrics")}, indent=1))


if __name__ == "__main__":
    main()
