"""The elastic supernet (``scalesearch.model.supernet``): a sub-network run through the shared weights equals the
stand-alone model of its spec loaded with the sliced weights; slices are views (gradients reach the storage);
recalibration changes running statistics and not weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalesearch.model.supernet import ElasticSpace, SubNetwork, Supernet, batch_norms, recalibrate
from scalesearch.spec import DetectorSpec

BASE = DetectorSpec(backbone="efficientnet_b0", width_multiplier=0.25, depth_multiplier=0.25, num_classes=3,
                    topology="bifpn")
CHANNELS = [16, 24, 48]  # backbone maps of levels 3..5 (one equals a width below: its resample conv is absent)
SPACE = ElasticSpace(fpn_channels=(16, 24, 32), fpn_repeats=(1, 2, 3), head_repeats=(1, 2), resolution=(64, 128),
                     fusion=("sum", "fast", "channel_fast"), activation=("relu6", "swish"))


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    net = Supernet(BASE, SPACE, CHANNELS, init_seed=0)
    with torch.no_grad():  # non-trivial running statistics and fusion weights, so slicing them is tested
        for name, buf in net.named_buffers():
            if "running_var" in name:
                buf.uniform_(0.5, 2.0)
            elif "running_mean" in name:
                buf.normal_(0, 0.3)
        for name, p in net.weights.items():
            if "fusion" in name:
                p.uniform_(0.2, 2.0)
    return net.eval()


def features(resolution: int, batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, resolution // 2**lvl, resolution // 2**lvl, generator=g)
            for c, lvl in zip(CHANNELS, (3, 4, 5))]


CASES = [SPACE.largest(), SPACE.smallest(),
         dict(fpn_channels=24, fpn_repeats=2, head_repeats=1, resolution=128, fusion="fast", activation="swish"),
         dict(fpn_channels=16, fpn_repeats=3, head_repeats=2, resolution=64, fusion="channel_fast",
              activation="relu6")]


@pytest.mark.parametrize("choice", CASES, ids=lambda c: "w{fpn_channels}-r{fpn_repeats}-h{head_repeats}-{fusion}".format(**c))
def test_a_subnetwork_equals_the_standalone_model_with_sliced_weights(supernet, choice):
    spec = supernet.spec(choice)
    standalone = SubNetwork(spec, CHANNELS).eval()
    state = {}
    for name, tensor in standalone.state_dict().items():  # slice by hand: the leading block of the stored tensor
        owner = name.rsplit(".", 1)[0]
        store = name
        if "fusion" in owner and name.endswith("weight"):
            store = f"{name}@{spec.fusion}"
        state[name] = supernet.tensor(store)[tuple(slice(0, s) for s in tensor.shape)].clone()
    standalone.load_state_dict(state)
    x = features(choice["resolution"])
    with torch.no_grad():
        shared = supernet.run(choice, x)
        alone = standalone(x)
        extracted = supernet.extract(choice)(x)
    for a, b, c in zip(shared[0] + shared[1], alone[0] + alone[1], extracted[0] + extracted[1]):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(c, b, rtol=0, atol=0)
    # The sub-network's parts are those of its spec: repeats and widths as asked.
    assert len(standalone.fpn.cells) == choice["fpn_repeats"] and len(standalone.class_net.convs) == choice["head_repeats"]
    assert standalone.class_net.predict.conv_pw.weight.shape[1] == choice["fpn_channels"]


def test_subnetworks_differ_and_share_their_leading_weights(supernet):
    small, large = supernet.sliced(SPACE.smallest()), supernet.sliced(SPACE.largest())
    name = "class_net.convs.0.conv_pw.weight"
    assert small[name].shape == (16, 16, 1, 1) and large[name].shape == (32, 32, 1, 1)
    assert small[name].data_ptr() == large[name].data_ptr()  # views of one storage
    x = features(64)
    with torch.no_grad():
        a = supernet.run(SPACE.smallest(resolution=64), x)[0][0]
        b = supernet.run(SPACE.largest(resolution=64), x)[0][0]
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_gradients_of_a_subnetwork_reach_only_its_slices():
    net = Supernet(BASE, SPACE, CHANNELS, init_seed=1).train()
    choice = SPACE.smallest()
    cls, box = net.run(choice, features(64))
    (sum(c.square().mean() for c in cls) + sum(b.square().mean() for b in box)).backward()
    grad = net.tensor("class_net.convs.0.conv_pw.weight").grad
    assert grad[:16, :16].abs().sum() > 0
    assert grad[16:].abs().sum() == 0 and grad[:, 16:].abs().sum() == 0
    assert net.tensor("fpn.cells.2.nodes.0.conv.conv_pw.weight").grad is None  # a cell the choice does not have


def test_recalibration_changes_statistics_not_weights(supernet):
    sub = supernet.extract(CASES[2])
    weights = {k: v.clone() for k, v in sub.named_parameters()}
    stats = {k: v.clone() for k, v in sub.named_buffers() if "running" in k}
    seen = recalibrate(sub, (features(128, batch=4, seed=s) for s in range(3)))
    assert seen == 3 and not sub.training
    for k, v in sub.named_parameters():
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0)
    changed = [k for k, v in sub.named_buffers() if "running" in k and not torch.equal(v, stats[k])]
    assert len(changed) == len(stats)
    assert all(bn.momentum == 0.01 for bn in batch_norms(sub))  # the recipe's momentum restored
    # Cumulative averages: the first BN's mean is the mean of its inputs' per-batch means.
    bn = sub.fpn.cells[0].nodes[0].bn
    inputs = []
    hook = bn.register_forward_hook(lambda m, i, o: inputs.append(i[0].mean((0, 2, 3))))
    recalibrate(sub, (features(128, batch=4, seed=s) for s in range(3)))
    hook.remove()
    torch.testing.assert_close(bn.running_mean, torch.stack(inputs).mean(0), rtol=1e-5, atol=1e-6)


def test_the_space_counts_and_samples_its_members():
    assert SPACE.size == 3 * 3 * 2 * 2 * 3 * 2
    members = list(SPACE.all())
    assert len(members) == SPACE.size and len({tuple(m.values()) for m in members}) == SPACE.size
    rng = np.random.default_rng(0)
    draws = [SPACE.sample(rng) for _ in range(200)]
    assert all(SPACE.contains(d) for d in draws)
    assert {d["fpn_channels"] for d in draws} == {16, 24, 32}
    assert not SPACE.contains({**SPACE.largest(), "fpn_channels": 40})
