"""``scalesearch.backbones`` is data that study validation reads without timm; here it is held to timm."""

from __future__ import annotations

import pytest

from scalesearch.backbones import BACKBONES, PACKAGE_WEIGHTS, check_backbone, check_package_weights
from scalesearch.errors import UserError
from scalesearch.model.backbone import timm_backbone_names


def test_the_backbone_table_is_what_timm_can_scale():
    assert BACKBONES == timm_backbone_names()


def test_every_packaged_backbone_is_a_known_backbone():
    assert set(PACKAGE_WEIGHTS) <= set(BACKBONES)


def test_an_unknown_backbone_lists_close_names():
    with pytest.raises(UserError, match=r"unknown backbone 'efficientnet_b9' \(close names: efficientnet_b8"):
        check_backbone("efficientnet_b9")


def test_a_pretrained_backbone_needs_package_weights():
    check_package_weights(["tf_efficientnet_lite0"])
    with pytest.raises(UserError, match=r"^space.backbone: pretrained trials need package weights, which exist for "
                                        r"tf_efficientnet_lite0, .*, but got 'efficientnet_b0'$"):
        check_package_weights(["tf_efficientnet_lite0", "efficientnet_b0"])
