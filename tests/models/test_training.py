import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint
from models.configs import JointLossConfig, TrainConfig
from models.datasets import load_dataset
from models.encoders import load_encoder
from models.jointloss import JointLossNet
from models.losses import JointLoss
from models.training import TrainProgress, learning_rate_factor, train
from tests.models.synthetic import write_generic_dataset


def test_warm_up_then_step_or_cosine_schedule():
    step = TrainConfig(epochs=120, warmup_epochs=10, milestones=[40, 70])
    assert [round(learning_rate_factor(e, step), 3) for e in (0, 5, 10, 39, 40, 69, 70, 119)] == [
        0.1,
        0.55,
        1.0,
        1.0,
        0.1,
        0.1,
        0.01,
        0.01,
    ]
    cosine = TrainConfig(epochs=20, warmup_epochs=0, schedule="cosine")
    assert learning_rate_factor(0, cosine) == 1.0
    assert learning_rate_factor(10, cosine) == pytest.approx(0.5)
    assert learning_rate_factor(19, cosine) < 0.01
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear").validate()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return load_dataset(
        "generic", write_generic_dataset(tmp_path_factory.mktemp("synthetic"), train_ids=8, test_ids=4, per_camera=2)
    )


def _net(num_classes):
    torch.manual_seed(0)
    return JointLossNet(
        JointLossConfig(backbone="resnet18", num_classes=num_classes, input_size=[64, 32], global_dim=64, part_dim=16)
    )


class _Counter(TrainProgress):
    def __init__(self):
        self.iterations = 0

    def on_iteration(self, stats):
        self.iterations += 1


@pytest.mark.slow
def test_checkpoint_each_epoch_resume_continues_and_the_result_loads_as_an_encoder(tmp_path, synthetic):
    pids = sorted({s.pid for s in synthetic.train})
    labels = [pids.index(s.pid) for s in synthetic.train]
    out = tmp_path / "model.pt"
    config = TrainConfig(epochs=3, p=4, k=2, warmup_epochs=1, workers=0, eval_every=0, max_iterations=1)
    counter = _Counter()
    first = train(
        _net(len(pids)),
        synthetic.train,
        labels,
        None,
        config,
        JointLoss(),
        out,
        {"dataset": "synthetic"},
        progress=counter,
        stop=lambda: counter.iterations >= 1,
    )
    assert first.epochs_run == 0  # stopped inside epoch 1: its checkpoint is written for resume
    _, meta, state = load_checkpoint(out, with_training_state=True)
    assert meta["epoch"] == 0 and state is not None and "optimizer" in state

    evaluations = []
    resumed = train(
        _net(len(pids)),
        synthetic.train,
        labels,
        None,
        config,
        JointLoss(),
        out,
        {"dataset": "synthetic"},
        resume=True,
        evaluate=lambda net: evaluations.append(net.training) or {"rank1": 1.0, "mAP": 2.0},
    )
    assert resumed.epochs_run == 3 and [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert evaluations == [False]  # once, after the last epoch, in eval mode
    state_dict, meta, state = load_checkpoint(out, with_training_state=True)
    assert meta["epoch"] == 3 and meta["metrics"] == {"rank1": 1.0, "mAP": 2.0} and state is None
    assert meta["config"]["num_classes"] == len(pids) and meta["dataset"] == "synthetic"
    assert all(isinstance(v, torch.Tensor) for v in state_dict.values())
    encoder = load_encoder(out)
    assert encoder.dims == 64 + 4 * 16 and encoder.input_size == (64, 32)
    crops = [np.full((80, 40, 3), 90, np.uint8)]
    assert encoder.encode(crops).shape == (1, 128)

    with pytest.raises(ValueError, match="different architecture"):
        other = JointLossNet(JointLossConfig(backbone="resnet18", num_classes=len(pids), input_size=[64, 32]))
        train(other, synthetic.train, labels, None, config, JointLoss(), out, {}, resume=True)


def test_wise_ft_mixes_the_backbone_with_its_starting_weights_across_a_resume(tmp_path, synthetic):
    pids = sorted({s.pid for s in synthetic.train})
    labels = [pids.index(s.pid) for s in synthetic.train]
    out = tmp_path / "wise.pt"
    config = TrainConfig(
        epochs=2,
        p=4,
        k=2,
        warmup_epochs=0,
        workers=0,
        eval_every=0,
        max_iterations=2,
        lr=1e-2,
        wise_alpha=0.25,
        head_lr_factor=3.0,
    )
    start = {k: v.clone() for k, v in _net(len(pids)).state_dict().items()}
    counter = _Counter()
    train(
        _net(len(pids)),
        synthetic.train,
        labels,
        None,
        config,
        JointLoss(),
        out,
        {},
        progress=counter,
        stop=lambda: counter.iterations >= 3,
    )  # stopped in epoch 2: the starting weights travel in the checkpoint
    _, meta, state = load_checkpoint(out, with_training_state=True)
    assert meta["epoch"] == 1 and set(state["start_state"]) == {
        k for k in start if k.startswith(("trunk.", "layer4.")) and start[k].is_floating_point()
    }
    net = _net(len(pids))
    evaluated = []

    def evaluate(model):  # called before and after the mix at the last epoch
        evaluated.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"rank1": 0.0, "mAP": 0.0}

    result = train(net, synthetic.train, labels, None, config, JointLoss(), out, {}, resume=True, evaluate=evaluate)
    fine_tuned = evaluated[0]
    key = next(k for k in state["start_state"] if k.endswith("weight") and start[k].dim() == 4)
    assert not torch.equal(fine_tuned[key], start[key])  # training moved it
    assert torch.allclose(net.state_dict()[key], 0.75 * start[key] + 0.25 * fine_tuned[key], atol=1e-6)
    head = next(k for k in fine_tuned if k.startswith("global_head.embed"))
    assert torch.equal(net.state_dict()[head], fine_tuned[head])  # new layers keep their fine-tuned weights
    assert result.history[-1]["wise_ft_alpha"] == 0.25 and "metrics_before_wise_ft" in result.history[-1]
    _, final_meta, final_state = load_checkpoint(out, with_training_state=True)
    assert final_state is None and final_meta["train"]["wise_alpha"] == 0.25
