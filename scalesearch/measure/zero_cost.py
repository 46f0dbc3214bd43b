"""Zero-cost scores: what an untrained detector says about itself on one batch, before any training.

Three published scores, each computed on a freshly built detector (random init under a fixed seed, the
backbone loaded from ``spec.weights`` as training would) and one batch:

``naswot`` (Mellor et al., "Neural Architecture Search without Training", ICML 2021): every call of an
elementwise activation module maps each unit of each image to a bit, 1 where the unit's pre-activation is
> 0. With c_i the concatenated code of image i over all N_A units, the kernel is
K_H[i, j] = N_A - d_H(c_i, c_j) (d_H the Hamming distance) = c_i.c_j + (1 - c_i).(1 - c_j), and the score
is log |det K_H|. Mellor et al. define the code for ReLU, where a unit's bit says which linear piece it is
on. scalesearch detectors also use relu6 and swish (SiLU); for every one of them the bit is the sign of
the pre-activation (x > 0): for relu6 it is relu's gate (the clip at 6 is not a second bit), and swish
has no linear pieces, so its sign is the nearest thing to a gate (swish(x) > 0 exactly when x > 0). The
model is in training mode (batch statistics in BatchNorm), as in the paper's code.

``synflow`` (Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic
flow", NeurIPS 2020): with every parameter and buffer replaced by its absolute value and an all-ones
input of one image, R = the sum of every output; the score is sum over weights of |theta * dR/dtheta|.
As in Abdelfattah et al.'s use of it for NAS, the sum runs over the weights of conv and linear layers and
the computation is in float64. The network is linearised: BatchNorm is bypassed (identity; "BN none")
and the elementwise activations (relu, relu6, swish) are identity. For relu on a positive network that is
no change at all; for relu6 it avoids the clip at 6, which would zero every gradient of a network whose
positive activations grow layer by layer; for swish it is the positive-side limit. Other
nonlinearities (squeeze-excitation sigmoid gates, max-pooling, fusion weights) are kept.

``grad_norm`` (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021): the detection
loss of the batch (``scalesearch.training.train.detector_loss``: focal + Huber), back-propagated once; the score
is the sum over conv and linear layers of the Euclidean (Frobenius) norm of the loss gradient with
respect to that layer's weight, as in the authors' code.

``zero_cost_scores`` restores what it changes (the global RNG state, grad mode, the thread count) and
gives the same numbers for the same spec and batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from scalesearch.errors import UserError

SCORES = ("naswot", "synflow", "grad_norm")
SEED = 0

log = logging.getLogger(__name__)


def activation_types() -> tuple[type[nn.Module], ...]:
    """Elementwise activation modules the specs use (relu, relu6 = a Hardtanh, swish = SiLU)."""
    return (nn.ReLU, nn.Hardtanh, nn.SiLU)


def weighted_layers(model: nn.Module) -> Iterator[nn.Module]:
    """Conv and linear layers (timm's padded ``Conv2dSame`` is an ``nn.Conv2d``): the weights the
    synflow and grad-norm sums run over."""
    return (m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


# ------------------------------------------------------------------------------------------ NASWOT
class CodeKernel:
    """Accumulates K_H = sum over activation calls of C C^T + (1 - C)(1 - C)^T, C the batch's binary codes.

    Use as a context manager around one forward pass; hooks are removed on exit. Per call with n units:
    (1 - C)(1 - C)^T = n - s_i - s_j + C C^T (s the row sums), so one matmul per call suffices.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.matrix: Tensor | None = None
        self.units = 0
        self._handles: list[Any] = []

    def __enter__(self) -> "CodeKernel":
        for module in self.model.modules():
            if isinstance(module, activation_types()):
                self._handles.append(module.register_forward_pre_hook(self._hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        with torch.no_grad():
            x = inputs[0]
            codes = (x.detach().reshape(x.shape[0], -1) > 0).to(torch.float32)
            n = codes.shape[1]
            # 0/1 dot products are exact in float32 below 2**24 units per call; accumulate in float64
            ones = (codes @ codes.T).double()
            rows = codes.sum(1, dtype=torch.float64)
            layer = 2.0 * ones - rows[:, None] - rows[None, :] + n
            self.matrix = layer if self.matrix is None else self.matrix + layer
            self.units += n


def log_det(kernel: Tensor) -> float:
    """log |det K| (``torch.linalg.slogdet``); -inf when K is singular (two images with equal codes)."""
    sign, value = torch.linalg.slogdet(kernel.double())
    return float(value) if float(sign) != 0.0 else -math.inf


def naswot(model: nn.Module, forward: Callable[[], Any]) -> float:
    """NASWOT score of ``model`` for the batch that ``forward()`` runs through it."""
    with torch.no_grad(), CodeKernel(model) as kernel:
        forward()
    if kernel.matrix is None:
        raise ValueError("naswot: the model has no relu, relu6 or swish activation module")
    return log_det(kernel.matrix)


# ----------------------------------------------------------------------------------------- synflow
def _identity(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    return x


def _sum_outputs(out: Any) -> Tensor:
    if isinstance(out, Tensor):
        return out.sum()
    if isinstance(out, dict):
        out = list(out.values())
    return sum((_sum_outputs(o) for o in out), torch.zeros((), dtype=torch.float64))


def _pow2(t: Tensor) -> float:
    """A power of two near ``max |t|`` (1 for an all-zero tensor): dividing by it is exact."""
    peak = float(t.detach().abs().max()) if t.numel() else 0.0
    return 2.0 ** math.floor(math.log2(peak)) if peak > 0 and math.isfinite(peak) else 1.0


class _ScaledConv(torch.autograd.Function):
    """A float64 conv computed in float32 with exact power-of-two rescaling of input, weight and gradient.

    Synflow's activations and gradients on an all-positive network reach 1e70 and beyond (float32 stops at
    3e38), so the network runs in float64; but float64 convs on CPU take a slow path (depthwise ones one
    channel group at a time). Each conv here sees operands scaled to max ~1, so float32's range suffices
    and only its precision (~1e-7 relative) is lost, far below anything a ranking of scores can see."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any,
                dilation: Any, groups: int) -> Tensor:
        import torch.nn.functional as F

        sx, sw = _pow2(x), _pow2(weight)
        xf, wf = (x / sx).float(), (weight / sw).float()
        ctx.save_for_backward(xf, wf)
        ctx.conf = (sx, sw, stride, padding, dilation, groups, bias is not None)
        out = F.conv2d(xf, wf, None, stride, padding, dilation, groups).double() * (sx * sw)
        return out if bias is None else out + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        xf, wf = ctx.saved_tensors
        sx, sw, stride, padding, dilation, groups, has_bias = ctx.conf
        sg = _pow2(grad)
        gx, gw, _ = torch.ops.aten.convolution_backward(
            (grad / sg).float(), xf, wf, None, list(stride), list(padding), list(dilation), False, [0, 0], groups,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
        grad_x = None if gx is None else gx.double() * (sg * sw)
        grad_w = None if gw is None else gw.double() * (sg * sx)
        grad_b = grad.sum((0, 2, 3)) if has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None, None, None


def _scaled_conv_forward(conv: nn.Conv2d) -> Callable[[Tensor], Tensor]:
    """``conv``'s own function (zero padding, or timm's TF "same" padding) through ``_ScaledConv``."""
    import torch.nn.functional as F

    same_padding = type(conv).__name__ == "Conv2dSame"  # timm: "same" padding computed per input size

    def forward(x: Tensor) -> Tensor:
        padding = conv.padding
        if same_padding:
            from timm.layers.padding import pad_same

            x, padding = pad_same(x, list(conv.kernel_size), list(conv.stride), list(conv.dilation)), (0, 0)
        elif conv.padding_mode != "zeros":
            x, padding = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode), (0, 0)
        return _ScaledConv.apply(x, conv.weight, conv.bias, conv.stride, padding, conv.dilation, conv.groups)

    return forward


def _scalable(module: nn.Module) -> bool:
    return type(module) is nn.Conv2d and not isinstance(module.padding, str) or type(module).__name__ == "Conv2dSame"


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Synflow of ``model`` for inputs of ``input_shape`` (one image, no batch axis).

    Changes ``model`` in place (float64, absolute values, BatchNorm and activations bypassed, convs through
    ``_ScaledConv``): pass a model that is thrown away afterwards.
    """
    model.double().eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    for module in model.modules():  # instance attributes: this model only
        if isinstance(module, (nn.modules.batchnorm._BatchNorm, *activation_types())):
            module.forward = _identity
        elif _scalable(module):
            module.forward = _scaled_conv_forward(module)
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        total = _sum_outputs(model(torch.ones((1, *input_shape), dtype=torch.float64)))
        total.backward()
    with torch.no_grad():
        return float(sum((layer.weight * layer.weight.grad).abs().sum()
                         for layer in weighted_layers(model) if layer.weight.grad is not None))


# --------------------------------------------------------------------------------------- grad-norm
def grad_norm(model: nn.Module) -> float:
    """Sum over conv and linear layers of ||dL/dW||_2, read from the gradients a backward pass left."""
    with torch.no_grad():
        return float(sum(layer.weight.grad.double().norm()
                         for layer in weighted_layers(model) if layer.weight.grad is not None))


# ------------------------------------------------------------------------------------- a detector
@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def zero_cost_scores(spec: Any, images: Tensor, targets: list[dict], *, seed: int = SEED,
                     weights: bool = True, threads: int | None = 1) -> dict[str, float]:
    """``{"naswot", "synflow", "grad_norm"}`` of ``spec``'s detector for one batch (images Tensor[B, 3, R, R]
    at ``spec.resolution``, COCO-style targets as the training loader gives them).

    The detector is built under ``torch.manual_seed(seed)`` with the backbone from ``spec.weights``
    (``weights=False``: random init everywhere); one training-mode forward pass gives both the NASWOT codes
    and the loss whose gradient gives grad-norm; synflow then runs on the same (thrown-away) model. The
    global RNG state, grad mode and thread count are as they were afterwards. ``threads``: torch threads
    while scoring (None: leave as set). One by default: the ops of one small batch are too small to share,
    and on a busy 2-core machine two threads measured 20x slower (tiny detector: 14 s vs 0.6 s wall).
    """
    from scalesearch.model import build_detector
    from scalesearch.training.train import detector_loss

    images = images.float()
    with torch.random.fork_rng(devices=[]), _threads(threads), torch.enable_grad():
        torch.manual_seed(seed)
        model = build_detector(spec, weights=weights).to(memory_format=torch.channels_last)  # ~1.5x on CPU
        model.train()
        loss_fn = detector_loss(spec)
        with CodeKernel(model) as kernel:
            loss = loss_fn(model, images, targets)
        loss.backward()
        scores = {"naswot": log_det(kernel.matrix), "grad_norm": grad_norm(model)}
        scores["synflow"] = synflow(model, tuple(images.shape[1:]))
    return {name: scores[name] for name in SCORES}


# ------------------------------------------------------------------------------------ for a search
def first_batch(train_data: Any, spec: Any, cfg: Any) -> tuple[Tensor, list[dict]]:
    """The first batch of the training loader (``cfg``'s batch size and seed) at ``spec``'s resolution and
    input normalisation, without augmentation, so every trial at that resolution sees the same images."""
    from scalesearch.training.train import make_dataset, train_loader

    cfg = dataclasses.replace(cfg, num_workers=0)
    dataset = make_dataset(train_data, "train", spec, cfg, train=False)
    return next(iter(train_loader(dataset, cfg)))


def trial_scores(spec: Any, train_data: Any, cfg: Any, batches: dict | None = None) -> dict[str, float]:
    """Zero-cost scores of a trial's spec on the study's fixed batch; ``batches`` caches that batch per
    (resolution, normalisation). A failure to score (out of memory, a numerical error) gives ``{}`` and a
    warning (with ``search.prefilter`` on, such a trial ranks last). A ``UserError`` propagates. ``seconds``: the
    time the scoring took (what a prefilter pays per candidate)."""
    import time

    from scalesearch.model import input_normalization

    started = time.perf_counter()
    try:
        key = (spec.resolution, input_normalization(spec))
        if batches is None or key not in batches:
            batch = first_batch(train_data, spec, cfg)
            if batches is not None:
                batches[key] = batch
        else:
            batch = batches[key]
        return {**zero_cost_scores(spec, *batch), "seconds": round(time.perf_counter() - started, 4)}
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of an optional measurement
        log.warning("zero-cost scores of %s failed: %s: %s", getattr(spec, "name", spec), type(exc).__name__, exc)
        return {}
