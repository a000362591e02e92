"""Site self-adaptation measured on CUHK01 treated as an unlabelled two-camera site (issue 31).

Each person's two images in one camera are one tracklet; identities are hidden from training, which sees only the
tracklets, their cameras, and (with ``--confirmed N``) N cross-camera pairs an investigator confirmed. The starting
model must not have seen CUHK01: the shipped model was trained on it, so start from the CUHK03-only guard run
(README, "Generalisation guard"). Before and after, rank-1 and mAP on CUHK01 (query camera A, gallery camera B, all
971 people), scored at the shipped part weight.

    python benchmarks/adapt_cuhk01.py --weights runs/guard.pt --root ../shared/data/reid/cuhk01 --epochs 4

The loss, learning rate, association threshold and WiSE-FT weight default to ``reid-app adapt``'s
(``pipelines.adaptation.options.AdaptOptions``); 4 epochs here are about 270 batches, near its 300.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    from models.adaptation import TrackletAssociationLoss, associate_tracklets, pseudo_identities, tracklet_features
    from models.checkpoint import load_checkpoint
    from models.configs import JointLossConfig
    from models.datasets import read_cuhk01
    from models.encoders import JointLossEncoder
    from models.evaluation import cosine_distances, extract_features
    from models.jointloss import JointLossNet
    from models.metrics import evaluate_ranking
    from models.training import train
    from pipelines.adaptation.options import AdaptOptions
    from reid_app.console import stderr_console
    from reid_app.training_cli import _crop_pose, _keypoints

    site = AdaptOptions()  # the same settings as 'reid-app adapt' unless told otherwise
    from dataclasses import replace

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="the starting reid-app checkpoint (.pt)")
    parser.add_argument("--root", default=str(ROOT.parent / "shared/data/reid/cuhk01"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=site.lr)
    parser.add_argument("--threshold", type=float, default=site.threshold, help="lowest cosine that associates")
    parser.add_argument("--confirmed", type=int, default=0, help="cross-camera pairs given as confirmed")
    parser.add_argument("--part-weight", type=float, default=0.25, help="part weight at evaluation (shipped: 0.25)")
    parser.add_argument("--id-weight", type=float, default=site.id_weight)
    parser.add_argument("--triplet-weight", type=float, default=site.triplet_weight)
    parser.add_argument("--distill-weight", type=float, default=site.distill_weight)
    parser.add_argument("--wise-ft", type=float, default=site.wise_alpha, help="WiSE-FT weight (1: none)")
    parser.add_argument("--iterations", type=int, default=None, help="cap on batches per epoch")
    parser.add_argument("--out", default=str(ROOT / "runs/adapt-cuhk01.pt"))
    args = parser.parse_args()
    options = replace(
        site,
        lr=args.lr,
        id_weight=args.id_weight,
        triplet_weight=args.triplet_weight,
        distill_weight=args.distill_weight,
    )
    torch.set_num_threads(2)
    console = stderr_console()
    data = read_cuhk01(args.root)
    tag, estimate = _crop_pose("auto", "cpu")
    keypoints = _keypoints(data.train, data.root, tag, estimate, console, "cuhk01")
    position = {s.path: i for i, s in enumerate(data.train)}

    tracklet_keys = sorted({(s.pid, s.camid) for s in data.train})
    tracklet_of = {key: n for n, key in enumerate(tracklet_keys)}
    image_tracklet = np.array([tracklet_of[(s.pid, s.camid)] for s in data.train], np.int64)
    tracklet_camera = np.array([cam for _, cam in tracklet_keys], np.int64)
    tracklet_person = np.array([pid for pid, _ in tracklet_keys], np.int64)  # for scoring only, never trained on

    state, meta = load_checkpoint(args.weights)
    config = JointLossConfig.from_dict(meta["config"])
    config.num_classes = len(tracklet_keys)
    net = JointLossNet(config, pretrained_trunk=False)
    kept = {k: v for k, v in state.items() if "classifier" not in k}
    net.load_state_dict(kept, strict=False)

    net.config.part_weight = args.part_weight  # trained and scored at the shipped part weight
    query_rows = np.array([position[s.path] for s in data.query])
    gallery_rows = np.array([position[s.path] for s in data.gallery])

    def embed_and_score(model, label):
        """Every image's descriptor (one pass: the query and gallery are camera A and B of the same images)."""
        encoder = JointLossEncoder(model, label, "bench", args.weights, "cpu", batch_size=128)
        features = extract_features(encoder, data.train, keypoints)
        result = evaluate_ranking(
            cosine_distances(features[query_rows], features[gallery_rows]),
            np.array([s.pid for s in data.query]),
            np.array([s.pid for s in data.gallery]),
            np.array([s.camid for s in data.query]),
            np.array([s.camid for s in data.gallery]),
            20,
        ).as_dict()
        return features, result

    t0 = time.perf_counter()
    from models.checkpoint import file_sha256

    cache = Path(args.out).with_name(f"cuhk01-start-{file_sha256(args.weights)[:16]}-{args.part_weight}.npz")
    if cache.is_file():  # the starting model's pass is the same for every run from these weights
        saved = np.load(cache)
        embeddings, before = saved["features"], {"rank1": float(saved["rank1"]), "mAP": float(saved["mAP"])}
    else:
        embeddings, before = embed_and_score(net, "start")
        np.savez(cache, features=embeddings, rank1=before["rank1"], mAP=before["mAP"])
    print(f"start:   rank-1 {before['rank1']:.2f}  mAP {before['mAP']:.2f}  ({time.perf_counter() - t0:.0f} s)")
    features = tracklet_features(embeddings, image_tracklet, len(tracklet_keys))
    pairs = associate_tracklets(features, tracklet_camera, args.threshold)
    right = sum(tracklet_person[a] == tracklet_person[b] for a, b in pairs)
    print(
        f"associations: {len(pairs)} of {len(set(tracklet_person))} people, {right} right "
        f"({100 * right / max(len(pairs), 1):.1f}% precision)"
    )
    rng = np.random.default_rng(0)
    confirmed = []
    if args.confirmed:
        for pid in rng.choice(sorted(set(tracklet_person)), args.confirmed, replace=False):
            a, b = (tracklet_of[(pid, 0)], tracklet_of[(pid, 1)])
            confirmed.append((min(a, b), max(a, b)))
    identities = pseudo_identities(len(tracklet_keys), pairs + confirmed)
    loss = TrackletAssociationLoss(
        options.loss_config(),
        tracklet_camera,
        identities,
    )
    train_config = replace(
        options.train_config(args.epochs, 16), max_iterations=args.iterations, wise_alpha=args.wise_ft
    )
    t1 = time.perf_counter()
    train(
        net,
        data.train,
        image_tracklet.tolist(),
        keypoints,
        train_config,
        loss,
        Path(args.out),
        {"name": "adapted-cuhk01", "dataset": "cuhk01 (as an unlabelled site)"},
        "cpu",
        teacher=embeddings,
        sample_groups=identities[image_tracklet].tolist(),
    )
    adapted = time.perf_counter() - t1
    _, after = embed_and_score(net, "adapted")
    print(
        f"adapted: rank-1 {after['rank1']:.2f}  mAP {after['mAP']:.2f}  (training {adapted:.0f} s, "
        f"{args.epochs} epochs, {len(confirmed)} confirmed pairs)"
    )


if __name__ == "__main__":
    main()
