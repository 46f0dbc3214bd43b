from __future__ import annotations

import optuna
import pytest

from scalesearch.config import load_study
from scalesearch.errors import UserError
from scalesearch.search.space import BUDGET_PARAM, SearchSpace
from conftest import tiny_study

FAMILY = "spaces/topology_bifpn_family.yaml"


def _space(tmp_path, **changes) -> SearchSpace:
    return SearchSpace(load_study(tiny_study(tmp_path, **changes)))


def test_fixed_values_are_not_sampled_but_reach_the_spec(tmp_path):
    space = _space(tmp_path, space={"phi": 0, "topology": "panet", "fusion": "attn", "resolution": 256})
    trial = optuna.create_study().ask()
    assert space.suggest(trial) == {}
    spec = space.resolve({}, num_classes=3)
    assert (spec.topology, spec.fusion, spec.resolution, spec.num_classes) == ("panet", "softmax", 256, 3)
    assert (spec.fpn_channels, spec.fpn_repeats, spec.head_repeats) == (64, 3, 3)  # D0 by the paper's rule


def test_rule_coefficients_are_searchable(tmp_path):
    space = _space(tmp_path, space={"phi": 1, "width_growth": {"low": 1.1, "high": 1.6}, "resolution": 128})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = space.suggest(study.ask())
    assert set(params) == {"width_growth"}
    spec = space.resolve({"width_growth": 1.5}, num_classes=4)
    assert spec.fpn_channels == 96  # 64 * 1.5 rounded to a multiple of 8


def test_family_decisions_are_sampled_only_with_their_family(tmp_path):
    space = _space(tmp_path, space={"phi": -2.0, "topology": ["fpn", FAMILY], "resolution": 128})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = {}
    for _ in range(12):
        params = space.suggest(study.ask())
        seen.setdefault(params["topology"], set()).add(len(params))
    assert seen == {"fpn": {1}, FAMILY: {1 + 8}}  # 8 decisions in the BiFPN family
    picks = {f"bifpn_family.{k}": 0 for k in space.families[FAMILY].choices()}
    spec = space.resolve({"topology": FAMILY, **picks}, num_classes=4)
    assert spec.topology.startswith("bifpn_family-0.0.0.0.0.0.0.0@P3-P7:")


def test_sampled_budget_rung_is_a_parameter(tmp_path):
    space = _space(tmp_path, budgets={"flops": ["1B", "2B"], "assign": "sampled"})
    params = space.suggest(optuna.create_study().ask())
    assert params[BUDGET_PARAM] in (1e9, 2e9)
    assert space.grid() == {"phi": [-3.0, -2.0], "topology": ["fpn", "bifpn"], BUDGET_PARAM: [1e9, 2e9]}


def test_grid_needs_discrete_parameters(tmp_path):
    space = _space(tmp_path, space={"phi": {"low": 0, "high": 2, "step": 1}, "fpn_channels": {"low": 16.0, "high": 32.0}})
    with pytest.raises(UserError, match=r"space.fpn_channels is the continuous range"):
        space.grid()
    assert _space(tmp_path, space={"phi": {"low": 0, "high": 2}}).grid() == {"phi": [0, 1, 2]}


def test_pretrained_fixes_backbone_multipliers_while_the_rule_scales_the_rest(tmp_path):
    space = _space(tmp_path, space={"phi": -1.0, "pretrained": True, "activation": "relu6", "resolution": 256,
                                    "backbone": ["tf_efficientnet_lite0", "tf_efficientnet_lite1"]})
    spec = space.resolve({"backbone": "tf_efficientnet_lite1"}, num_classes=3)
    assert (spec.weights, spec.activation, spec.width_multiplier, spec.depth_multiplier) == ("package", "relu6", 1.0, 1.1)
    assert (spec.fpn_channels, spec.fpn_repeats, spec.head_repeats) == (48, 2, 2)  # the rule at phi = -1


@pytest.mark.parametrize("space, message", [
    ({"pretrained": True, "backbone": ["tf_efficientnet_lite0", "efficientnet_b0"]},
     "space.backbone: pretrained trials need package weights, which exist for tf_efficientnet_lite0, "
     "tf_efficientnet_lite1, tf_efficientnet_lite2, but got 'efficientnet_b0'"),
    ({"pretrained": "yes"}, "space.pretrained: must be true or false, but got 'yes'"),
    ({"activation": ["swish", "gelu"]}, "space.activation: must be one of swish, relu6, relu, but got 'gelu'"),
    ({"pretrained": True, "weights": "package"}, "space.pretrained: give either pretrained or weights, not both"),
    ({"backbone": ["efficientnet_b0", "resnet50"]}, "space.backbone: unknown backbone 'resnet50' ("),
])
def test_bad_weight_settings_in_a_space(tmp_path, space, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _space(tmp_path, space={"phi": -1.0, **space})
