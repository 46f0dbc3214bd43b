"""Zero-cost scores: each equals a value worked out by hand on a tiny network, and on a tiny detector each
equals an independent computation; the scores are deterministic and leave global state as it was."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from scalesearch.measure import zero_cost
from scalesearch.records import State, TrialRecord
from scalesearch.scaling import compound_spec

ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "swish": nn.SiLU}


def _linear(weight, bias=None) -> nn.Linear:
    weight = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


# ---------------------------------------------------------------------------------------- by hand
@pytest.mark.parametrize("act", ACTS)
def test_naswot_equals_the_log_det_worked_by_hand(act):
    # pre-activations of the 3 inputs: (1, 1), (-1, 1), (0, -2) -> codes 11, 01, 00 (the sign, for every
    # activation); N_A = 2 units, Hamming distances 1, 2, 1 -> K_H = N_A - d_H = [[2,1,0],[1,2,1],[0,1,2]],
    # det = 2*(4-1) - 1*(2-0) = 4.
    net = nn.Sequential(_linear([[1, -1], [1, 1]]), ACTS[act](), _linear([[1, 1]]))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    with zero_cost.CodeKernel(net) as kernel:
        net(x)
    assert kernel.units == 2
    assert kernel.matrix.tolist() == [[2, 1, 0], [1, 2, 1], [0, 1, 2]]
    assert zero_cost.naswot(net, lambda: net(x)) == pytest.approx(math.log(4), rel=1e-12)


def test_naswot_sums_the_kernels_of_every_activation_call():
    act = nn.ReLU()  # one module called twice: two calls, 2 + 2 units
    net = nn.Sequential(_linear([[1, -1], [1, 1]]), act, _linear([[1, 0], [0, -1]]), act)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    # second call: relu'd (1,1), (0,1), (0,0) -> (1,-1), (0,-1), (0,0) -> codes 10, 00, 00
    # K_2 = 2 - d_H = [[2,1,1],[1,2,2],[1,2,2]]; K = K_1 + K_2 = [[4,2,1],[2,4,3],[1,3,4]], det = 4*7 - 2*5 + 1*2 = 20
    assert zero_cost.naswot(net, lambda: net(x)) == pytest.approx(math.log(20), rel=1e-12)


@pytest.mark.parametrize("act", ACTS)
def test_synflow_equals_the_path_sum_worked_by_hand(act):
    # |theta|: W1 = [[1,2],[3,0]], b1 = [1,0.5], W2 = [[2,1]]; ones input: h = W1 1 + b1 = (4, 3.5), R = 2*4 + 3.5
    # dR/dW2 = h -> |W2 * h| sums to 11.5; dR/dW1[i, j] = W2[i] -> [[2,2],[1,1]] * [[1,2],[3,0]] sums to 9.
    # BatchNorm (here with weight 5) and the activation are bypassed.
    bn = nn.BatchNorm1d(2)
    with torch.no_grad():
        bn.weight.fill_(5.0)
    net = nn.Sequential(_linear([[1, -2], [3, 0]], [-1, 0.5]), bn, ACTS[act](), _linear([[2, -1]]))
    assert zero_cost.synflow(net, (2,)) == pytest.approx(20.5, rel=1e-12)


def test_grad_norm_sums_the_per_layer_norms_worked_by_hand():
    # y = W2 W1 x with W1 = I, W2 = (1, 2), x = (1, 1): y = 3, L = y**2, dL/dy = 6;
    # dL/dW2 = 6 * (1, 1) -> 6 sqrt 2; dL/dW1 = (6, 12)^T (1, 1) -> sqrt(2 * 36 + 2 * 144) = 6 sqrt 10.
    net = nn.Sequential(_linear([[1, 0], [0, 1]]), _linear([[1, 2]]))
    (net(torch.ones(1, 2)) ** 2).sum().backward()
    assert zero_cost.grad_norm(net) == pytest.approx(6 * math.sqrt(2) + 6 * math.sqrt(10), rel=1e-12)


# ------------------------------------------------------------------------------- a tiny detector
def _tiny(activation="swish"):
    spec = compound_spec(-3.0, resolution=128, num_classes=3, activation=activation)
    g = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, 128, 128, generator=g)
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0], [50.0, 40.0, 120.0, 100.0]]),
                "labels": torch.tensor([i % 3, (i + 1) % 3])} for i in range(4)]
    return spec, images, targets


def _model(spec):
    from scalesearch.model import build_detector

    torch.manual_seed(zero_cost.SEED)
    return build_detector(spec).to(memory_format=torch.channels_last).train()


@pytest.fixture
def one_thread():
    """The scores run on one thread (``zero_cost_scores``' default); so does the reference, for the same
    rounding (a sign near 0 can flip with the summation order)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("activation", ["swish", "relu6", "relu"])
def test_detector_scores_equal_independent_computations(activation, one_thread):
    from scalesearch.training.train import detector_loss

    spec, images, targets = _tiny(activation)
    scores = zero_cost.zero_cost_scores(spec, images, targets)
    assert set(scores) == {"naswot", "synflow", "grad_norm"} and all(map(math.isfinite, scores.values()))

    # NASWOT: the Hamming distances of the concatenated sign codes of every activation input, in numpy
    model, codes = _model(spec), []
    hooks = [m.register_forward_pre_hook(lambda m, i: codes.append((i[0].detach().flatten(1) > 0).numpy()))
             for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.SiLU))]
    loss = detector_loss(spec)(model, images, targets)
    for h in hooks:
        h.remove()
    c = np.concatenate(codes, axis=1)
    hamming = (c[:, None, :] != c[None, :, :]).sum(-1)
    assert scores["naswot"] == pytest.approx(np.linalg.slogdet(c.shape[1] - hamming)[1], rel=1e-9)

    # grad-norm: sum over conv/linear layers of the gradient's Frobenius norm
    loss.backward()
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    expected = sum(math.sqrt(float((m.weight.grad.double() ** 2).sum())) for m in layers)
    assert scores["grad_norm"] == pytest.approx(expected, rel=1e-6)


def test_detector_synflow_equals_plain_float64(monkeypatch, one_thread):
    spec, _, _ = _tiny("relu6")
    fast = zero_cost.synflow(_model(spec), (3, 128, 128))
    monkeypatch.setattr(zero_cost, "_scalable", lambda module: False)  # every conv in plain float64
    slow = zero_cost.synflow(_model(spec), (3, 128, 128))
    assert math.isfinite(slow) and slow > 1e10 and fast == pytest.approx(slow, rel=1e-5)


def test_scores_are_deterministic_and_restore_global_state():
    spec, images, targets = _tiny()
    torch.manual_seed(123)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    with torch.no_grad():
        first = zero_cost.zero_cost_scores(spec, images, targets)
        assert not torch.is_grad_enabled()
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
    assert zero_cost.zero_cost_scores(spec, images.clone(), copy.deepcopy(targets)) == first


def test_a_failure_to_score_gives_no_scores(monkeypatch):
    spec, images, targets = _tiny()

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(zero_cost, "zero_cost_scores", boom)
    assert zero_cost.trial_scores(spec, None, None, {(128, _norm(spec)): (images, targets)}) == {}


def _norm(spec):
    from scalesearch.model import input_normalization

    return input_normalization(spec)


def test_records_carry_scores_and_old_records_load_without():
    record = TrialRecord(3, State.INFEASIBLE, zero_cost={"naswot": 1.5, "synflow": 2e70, "grad_norm": 3.0})
    assert record.to_json()["zero_cost"] == {"naswot": 1.5, "synflow": 2e70, "grad_norm": 3.0}
    assert TrialRecord.from_json(record.to_json()) == record
    old = record.to_json()
    del old["zero_cost"]
    assert TrialRecord.from_json(old).zero_cost == {} and "zero_cost" not in TrialRecord.from_json(old).space
