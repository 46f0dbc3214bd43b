"""An elastic feature network and heads: one set of weights from which every sub-network of an elastic space is
cut (weight sharing, as in once-for-all / BigNAS, here for the parts of an EfficientDet above a fixed backbone).

Elastic dimensions (``ElasticSpace``): the feature network's width (``fpn_channels``: the first w channels of every
convolution, batch norm and per-channel fusion weight), its depth (``fpn_repeats``: the first k cells), the heads'
depth (``head_repeats``: the first k layers) and the input resolution (no weights: a sub-network at any resolution
uses the same ones). Two categorical choices share the convolutions too: ``fusion`` (each method keeps its own
fusion weights; ``sum`` has none) and ``activation`` (no weights). Everything else (backbone, topology, anchors,
classes, padding) is fixed per supernet: a study with several topologies trains one supernet each (few-shot).

Storage: for every tensor name of a stand-alone sub-network (``SubNetwork``: the feature network and heads that
``build_top`` makes for a spec), the supernet holds one tensor of the largest shape any sub-network gives that
name; a sub-network's tensor is its leading slice, ``storage[:s0, :s1, ...]`` for its shape ``(s0, s1, ...)``.
Fusion weights are stored per method (``<name>@<method>``). Training runs a sub-network by
``torch.func.functional_call`` on a skeleton of its shape with the slices (views: gradients and batch-norm
running statistics reach the storage); ``extract`` copies the slices into a stand-alone ``SubNetwork`` that is
then an ordinary module (the two give the same outputs, tests check it). ``recalibrate`` re-estimates a
sub-network's batch-norm statistics on training images before it is scored (the shared statistics are a mixture
over sub-networks).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from scalesearch.model.detector import build_top
from scalesearch.model.fpn import Fusion
from scalesearch.spec import DetectorSpec

ELASTIC = ("fpn_channels", "fpn_repeats", "head_repeats", "resolution")  # ordered: larger is "larger"
SHARED = ("fusion", "activation")  # categorical, convolutions shared
CHOICES = ELASTIC + SHARED
SKELETONS = 24  # skeleton modules kept per supernet (least recently used dropped)


@dataclass(frozen=True)
class ElasticSpace:
    """The values each dimension takes (sorted; ``fusions``/``activations`` in the order given)."""

    fpn_channels: tuple[int, ...]
    fpn_repeats: tuple[int, ...]
    head_repeats: tuple[int, ...]
    resolution: tuple[int, ...]
    fusion: tuple[str, ...]
    activation: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ELASTIC:
            object.__setattr__(self, name, tuple(sorted({int(v) for v in getattr(self, name)})))
        for name in SHARED:
            object.__setattr__(self, name, tuple(dict.fromkeys(str(v) for v in getattr(self, name))))
        empty = [name for name in CHOICES if not getattr(self, name)]
        if empty:
            raise ValueError(f"ElasticSpace: no values for {', '.join(empty)}")

    @property
    def size(self) -> int:
        """How many sub-networks the space holds."""
        return int(np.prod([len(getattr(self, name)) for name in CHOICES]))

    def largest(self, **fixed: Any) -> dict[str, Any]:
        """The largest sub-network (every elastic dimension at its maximum; the first fusion and activation),
        with ``fixed`` choices overriding."""
        return {**{n: getattr(self, n)[-1] for n in ELASTIC}, **{n: getattr(self, n)[0] for n in SHARED}, **fixed}

    def smallest(self, **fixed: Any) -> dict[str, Any]:
        return {**{n: getattr(self, n)[0] for n in ELASTIC}, **{n: getattr(self, n)[0] for n in SHARED}, **fixed}

    def sample(self, rng: np.random.Generator, **fixed: Any) -> dict[str, Any]:
        """A uniformly drawn sub-network (each dimension independently), ``fixed`` choices overriding."""
        out = {n: getattr(self, n)[int(rng.integers(len(getattr(self, n))))] for n in CHOICES}
        return {**out, **fixed}

    def all(self) -> Iterable[dict[str, Any]]:
        """Every sub-network, in a fixed order."""
        for values in itertools.product(*(getattr(self, n) for n in CHOICES)):
            yield dict(zip(CHOICES, values))

    def contains(self, choice: dict[str, Any]) -> bool:
        return all(choice[n] in getattr(self, n) for n in CHOICES)

    def choice_of(self, spec: DetectorSpec) -> dict[str, Any]:
        """The choice a spec makes (``KeyError``-free: a value outside the space is returned as is)."""
        return {n: getattr(spec, n) for n in CHOICES}


def fixed_part(spec: DetectorSpec) -> DetectorSpec:
    """``spec`` with its elastic and shared choices blanked: two specs cut from one supernet have equal fixed parts
    (backbone, weights, topology, anchors, classes, padding, levels)."""
    return spec.replace(fpn_channels=64, fpn_repeats=1, head_repeats=1, resolution=512, fusion="sum",
                        activation="relu", name=None)


class SubNetwork(nn.Module):
    """A detector without its backbone: ``forward(features)`` (the backbone's maps, levels min..L_b) ->
    ``(cls_outputs, box_outputs)`` as ``EfficientDet.forward``; ``spec`` is the sub-network's."""

    def __init__(self, spec: DetectorSpec, backbone_channels: Sequence[int], *, init_seed: int | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.fpn, self.class_net, self.box_net = build_top(spec, list(backbone_channels), init_seed=init_seed)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        feats = self.fpn(features)
        return self.class_net(feats), self.box_net(feats)

    def channels_last(self) -> bool:
        weight = next(p for p in self.parameters() if p.dim() == 4)
        return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def _storage_names(module: nn.Module) -> dict[str, str]:
    """State name -> storage name for a ``SubNetwork``: fusion weights get ``@<method>``, the rest keep theirs."""
    out = {}
    fusions = {name for name, m in module.named_modules() if isinstance(m, Fusion) and m.weight is not None}
    methods = {name: m.method for name, m in module.named_modules() if isinstance(m, Fusion)}
    for name in module.state_dict():
        owner = name.rsplit(".", 1)[0]
        out[name] = f"{name}@{methods[owner]}" if owner in fusions else name
    return out


def _mangle(name: str) -> str:
    return name.replace(".", "__")


def _leading(tensor: Tensor, shape: Sequence[int]) -> Tensor:
    return tensor[tuple(slice(0, s) for s in shape)]


class Supernet(nn.Module):
    """The shared weights of every sub-network of ``space`` on ``base``'s fixed part, for a backbone with
    ``backbone_channels``. ``init_seed``: the largest sub-network of each fusion starts as
    ``build_top(spec, init_seed=init_seed)`` does (``build_detector``'s per-part streams)."""

    def __init__(self, base: DetectorSpec, space: ElasticSpace, backbone_channels: Sequence[int], *,
                 init_seed: int = 0) -> None:
        super().__init__()
        self.base, self.space, self.backbone_channels = fixed_part(base), space, tuple(backbone_channels)
        self.init_seed = init_seed
        self.skeletons: OrderedDict[tuple, tuple[SubNetwork, dict[str, str], dict[str, tuple[int, ...]]]] = OrderedDict()
        # Every tensor name any sub-network has, at its largest shape: the deepest sub-networks of every (width,
        # fusion); widths ascending, so the leading slices end as the widest's initial values.
        shapes: dict[str, tuple[int, ...]] = {}
        values: dict[str, list[Tensor]] = {}
        kinds: dict[str, bool] = {}
        for width in space.fpn_channels:
            for fusion in space.fusion:
                choice = space.largest(fpn_channels=width, fusion=fusion)
                module = SubNetwork(self.spec(choice), self.backbone_channels, init_seed=init_seed)
                params, state = dict(module.named_parameters()), module.state_dict()
                for name, store in _storage_names(module).items():
                    tensor = state[name]
                    old = shapes.get(store, tensor.shape)
                    shapes[store] = tuple(max(a, b) for a, b in zip(old, tensor.shape))
                    values.setdefault(store, []).append(tensor)
                    kinds[store] = name in params
        self.weights = nn.ParameterDict()
        self.names: dict[str, str] = {}  # storage name -> mangled attribute name
        for store, shape in shapes.items():
            full = torch.zeros(shape, dtype=values[store][0].dtype)
            for tensor in values[store]:
                _leading(full, tensor.shape).copy_(tensor)
            key = _mangle(store)
            self.names[store] = key
            if kinds[store]:
                self.weights[key] = nn.Parameter(full)
            else:
                self.register_buffer(f"stat__{key}", full)

    # -- sub-networks ---------------------------------------------------------------------------
    def spec(self, choice: dict[str, Any]) -> DetectorSpec:
        """The stand-alone spec of a choice (``ElasticSpace`` keys) on this supernet's fixed part."""
        return self.base.replace(**{n: choice[n] for n in CHOICES})

    def tensor(self, store: str) -> Tensor:
        key = self.names[store]
        return self.weights[key] if key in self.weights else getattr(self, f"stat__{key}")

    def _skeleton(self, choice: dict[str, Any]) -> tuple[SubNetwork, dict[str, str], dict[str, tuple[int, ...]]]:
        """A module of the choice's shape (its own tensors unused), its storage names and tensor shapes."""
        key = tuple(choice[n] for n in CHOICES if n != "resolution")
        if key in self.skeletons:
            self.skeletons.move_to_end(key)
            return self.skeletons[key]
        module = SubNetwork(self.spec(choice), self.backbone_channels)
        if any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in self.weights.values()):
            module = module.to(memory_format=torch.channels_last)
        shapes = {name: tuple(t.shape) for name, t in module.state_dict().items()}
        found = (module.requires_grad_(False), _storage_names(module), shapes)
        self.skeletons[key] = found
        while len(self.skeletons) > SKELETONS:
            self.skeletons.popitem(last=False)
        return found

    def sliced(self, choice: dict[str, Any]) -> dict[str, Tensor]:
        """The sub-network's state (its names -> leading slices of the storage: views, not copies)."""
        module, names, shapes = self._skeleton(choice)
        missing = [store for store in names.values() if store not in self.names]
        if missing:
            raise KeyError(f"supernet: no stored tensor {missing[0]!r} for choice {choice}")
        return {name: _leading(self.tensor(store), shapes[name]) for name, store in names.items()}

    def run(self, choice: dict[str, Any], features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """The sub-network's outputs on ``features``, through the shared weights (train or eval mode as the
        supernet is; in train mode its batch norms update the shared running statistics' slices)."""
        module = self._skeleton(choice)[0]
        module.train(self.training)
        return torch.func.functional_call(module, self.sliced(choice), (features,), strict=True)

    def extract(self, choice: dict[str, Any]) -> SubNetwork:
        """A stand-alone ``SubNetwork`` of the choice's spec holding copies of its slices (eval mode)."""
        module = SubNetwork(self.spec(choice), self.backbone_channels)
        module.load_state_dict({name: t.detach().clone() for name, t in self.sliced(choice).items()}, strict=True)
        return module.eval()


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recalibrate(module: nn.Module, batches: Iterable[list[Tensor]]) -> int:
    """Re-estimate ``module``'s batch-norm running statistics as the plain average over ``batches`` (each a list of
    backbone maps): statistics reset, momentum None (cumulative), forward in train mode without gradient; weights
    untouched; returns the module in eval mode, and how many batches it saw."""
    norms = batch_norms(module)
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    seen = 0
    module.train()
    try:
        with torch.no_grad():
            for features in batches:
                module(features)
                seen += 1
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        module.eval()
    return seen


