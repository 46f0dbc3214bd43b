"""Topologies: effdet node lists, generators at any level range, validation errors, YAML and inline
round trips, the search family, fusion names and drawings."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from servers import TEST_EXTRAS, need_module

from scalesearch.errors import UserError
from scalesearch.topology import (
    FUSIONS, Node, Topology, canonical_fusion, get_topology, list_topologies, load_family, load_topology,
    parse_inline, save_topology,
)

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ROOT / "spaces" / "topology_bifpn_family.yaml"

# ../shared/REFERENCE.md, "Topologies": effdet 0.4.1's node lists for P3-P7 (id:P<level>[inputs]).
REFERENCE = {
    "bifpn": "5:P6[3,4] 6:P5[2,5] 7:P4[1,6] 8:P3[0,7] 9:P4[1,7,8] 10:P5[2,6,9] 11:P6[3,5,10] 12:P7[4,11]",
    "panet": "5:P7[4] 6:P6[3,5] 7:P5[2,6] 8:P4[1,7] 9:P3[0,8] 10:P3[9] 11:P4[8,10] 12:P5[7,11] 13:P6[6,12] "
             "14:P7[5,13]",
    "qufpn": "5:P6[3,4] 6:P5[2,5] 7:P4[1,6] 8:P3[0,7] 9:P4[1,7,8] 10:P5[2,6,9] 11:P6[3,5,10] 12:P7[4,11] "
             "13:P4[1,0] 14:P5[2,13] 15:P6[3,14] 16:P7[4,15] 17:P6[3,15,16] 18:P5[2,14,17] 19:P4[1,13,18] "
             "20:P3[0,19] 21:P3[8,20] 22:P4[9,19] 23:P5[10,18] 24:P6[11,17] 25:P7[12,16]",
    # Ours (neither automl nor effdet has it): PANet's top-down half.
    "fpn": "5:P7[4] 6:P6[3,5] 7:P5[2,6] 8:P4[1,7] 9:P3[0,8]",
}


def parse_reference(text: str) -> list[tuple[int, int, tuple[int, ...]]]:
    out = []
    for item in text.split():
        node_id, level, inputs = re.fullmatch(r"(\d+):P(\d+)\[([\d,]+)\]", item).groups()
        out.append((int(node_id), int(level), tuple(int(x) for x in inputs.split(","))))
    return out


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_p3_p7_node_lists_equal_reference(name):
    topo = get_topology(name, 3, 7)
    got = [(5 + i, n.level, n.inputs) for i, n in enumerate(topo.nodes)]
    assert got == parse_reference(REFERENCE[name])


def test_outputs_are_last_node_of_each_level():
    assert get_topology("bifpn").outputs() == [8, 9, 10, 11, 12]
    assert get_topology("panet").outputs() == [10, 11, 12, 13, 14]
    assert get_topology("qufpn").outputs() == [21, 22, 23, 24, 25]
    assert get_topology("fpn").outputs() == [9, 8, 7, 6, 5]


def test_qufpn_quad_nodes_fix_fast_fusion_others_follow_spec():
    fixed = [n.fusion for n in get_topology("qufpn").nodes]
    assert fixed == [None] * 16 + ["fast"] * 5
    assert all(n.fusion is None for name in ("fpn", "panet", "bifpn") for n in get_topology(name).nodes)


@pytest.mark.parametrize("name", ["fpn", "panet", "bifpn", "qufpn"])
@pytest.mark.parametrize("levels", [(2, 6), (3, 8), (3, 4), (1, 7)])
def test_generators_at_other_level_ranges(name, levels):
    lo, hi = levels
    topo = get_topology(name, lo, hi)
    assert (topo.min_level, topo.max_level) == levels
    assert [topo.level_of(i) for i in topo.outputs()] == list(range(lo, hi + 1))
    n = hi - lo + 1
    assert len(topo.nodes) == {"fpn": n, "panet": 2 * n, "bifpn": 2 * n - 2, "qufpn": 5 * n - 4}[name]


@pytest.mark.parametrize("levels", [(3, 7), (2, 6), (3, 8), (2, 4)])
def test_node_lists_equal_effdet_config_at_any_levels(levels):
    fpn_config = need_module("effdet.config.fpn_config", TEST_EXTRAS)
    for ours, theirs in [("panet", "pan"), ("bifpn", "bifpn"), ("qufpn", "qufpn")]:
        config = fpn_config.get_fpn_config(f"{theirs}_sum", *levels)
        expected = [(n["feat_level"], tuple(n["inputs_offsets"]), n["weight_method"]) for n in config.nodes]
        got = [(n.level, n.inputs, "fastattn" if n.fusion == "fast" else "sum")
               for n in get_topology(ours, *levels).nodes]
        assert got == expected


def test_list_topologies_and_unknown_name():
    assert list_topologies() == ["fpn", "panet", "bifpn", "qufpn"]
    with pytest.raises(UserError, match=r"unknown topology 'bifnp' \(close names: bifpn"):
        get_topology("bifnp")


def graph(*nodes, lo=3, hi=5):
    return Topology("x", lo, hi, tuple(Node(level, inputs) for level, inputs in nodes))


# A valid P3-P5 graph: ids 0..2 are inputs, nodes 3 (P4), 4 (P3), 5 (P5).
GOOD = ((4, (1, 2)), (3, (0, 3)), (5, (2, 3)))


@pytest.mark.parametrize("bad, message", [
    ({1: (3, (1, 5))}, "topology 'x' node 4 (P3): input 5 does not exist yet (valid ids 0..3)"),
    ({1: (3, (4, 0))}, "topology 'x' node 4 (P3): input 4 is the node itself, a cycle (valid ids 0..3)"),
    ({1: (3, (99,))}, "topology 'x' node 4 (P3): input 99 does not exist yet (valid ids 0..3)"),
    ({1: (3, (-1,))}, "topology 'x' node 4 (P3): input -1 is not a valid id (valid ids 0..3)"),
    ({0: (8, (1, 2))}, "topology 'x' node 3 (P8): level must be in P3..P5, but got 8"),
    ({2: (5, ())}, "topology 'x' node 5 (P5): needs at least one input, but got none"),
    ({2: (5, (2, 3, 2))}, "topology 'x' node 5 (P5): input 2 is listed twice"),
    ({2: (4, (2, 3))}, "topology 'x': no node produces P5 (every level P3..P5 needs one)"),
])
def test_invalid_graphs_name_the_node(bad, message):
    nodes = [bad.get(i, node) for i, node in enumerate(GOOD)]
    graph(*GOOD)  # the unmodified graph is valid
    with pytest.raises(UserError) as info:
        graph(*nodes)
    assert str(info.value) == message


def test_bad_fixed_fusion_and_levels_are_rejected():
    with pytest.raises(UserError, match=r"node 3 \(P4\): fusion must be one of sum, softmax"):
        Topology("x", 3, 5, (Node(4, (1, 2), "fastattn"),) + tuple(Node(lv, i) for lv, i in GOOD[1:]))
    with pytest.raises(UserError, match=r"topology 'x': 1 <= min_level < max_level must hold"):
        Topology("x", 5, 3, ())
    with pytest.raises(UserError, match=r"topology 'bifpn': 1 <= min_level < max_level must hold"):
        get_topology("bifpn", 4, 4)


@pytest.mark.parametrize("name", ["fpn", "panet", "bifpn", "qufpn"])
def test_inline_round_trip(name):
    topo = get_topology(name, 2, 6)
    text = topo.to_string()
    assert get_topology(text, 2, 6) == topo
    assert parse_inline(text).to_string() == text


def test_inline_form_and_errors():
    assert get_topology("bifpn").to_string() == (
        "bifpn@P3-P7:P6=3+4,P5=2+5,P4=1+6,P3=0+7,P4=1+7+8,P5=2+6+9,P6=3+5+10,P7=4+11")
    assert get_topology("qufpn").to_string().endswith("P3=8+20~fast,P4=9+19~fast,P5=10+18~fast,"
                                                      "P6=11+17~fast,P7=12+16~fast")
    with pytest.raises(UserError, match=r"inline topology 'g' node 4: must look like 'P4=1\+7\+8'"):
        get_topology("g@P3-P5:P4=1+2,P3=0;3,P5=2+3", 3, 5)
    with pytest.raises(UserError, match=r"topology 'g' node 4 \(P3\): input 7 does not exist yet"):
        get_topology("g@P3-P5:P4=1+2,P3=0+7,P5=2+3", 3, 5)
    with pytest.raises(UserError, match=r"topology 'g': graph covers P3..P5, but the spec asks for P3..P7"):
        get_topology("g@P3-P5:P4=1+2,P3=0+3,P5=2+3")


@pytest.mark.parametrize("name", ["qufpn", "spaces/custom_example.yaml"])
def test_yaml_round_trip(tmp_path, name, monkeypatch):
    monkeypatch.chdir(ROOT)
    topo = get_topology(name)
    path = tmp_path / "graph.yaml"
    save_topology(topo, path)
    assert load_topology(path) == topo
    assert get_topology(str(path)) == topo


def test_custom_example_yaml():
    topo = load_topology(ROOT / "spaces" / "custom_example.yaml")
    assert topo.name == "custom_example"
    assert topo.to_string() == "custom_example@P3-P7:P6=3+4,P5=2+5,P4=1+6,P3=0+7,P4=7+8,P5=6+9,P6=5+10,P7=4+11+10"


@pytest.mark.parametrize("text, message", [
    ("name: g\nmin_level: 3\nmax_level: 4\nnodes: [{level: 4, inputs: [0, 1]}, {level: 3, input: [0, 2]}]",
     r"g.yaml: nodes\[1\]: unknown key 'input' \(valid keys: fusion, inputs, level\)"),
    ("name: g\nmin_level: 3\nmax_level: 4\nnodes: [{level: 4, inputs: [0, 1]}, {level: 3, inputs: [0, 9]}]",
     r"topology 'g' node 3 \(P3\): input 9 does not exist yet \(valid ids 0..2\)"),
    ("name: g\nmin_level: 3\nmax_level: 4\nnodes: [{level: x, inputs: [0, 1]}]",
     r"g.yaml: nodes\[0\].level: must be int, but got 'x'"),
    ("name: g\nmin_level: 3\nnodes: []", r"g.yaml: missing key 'max_level'"),
    ("name: g\nmin_level: 3\nmax_level: 4\nnodes: [{level: 4, inputs: [0, 1], fusion: avg}]",
     r"unknown fusion 'avg'"),
    ("name: [g", r"g.yaml': invalid YAML \(while parsing a flow sequence"),
])
def test_yaml_errors_name_file_and_node(tmp_path, text, message):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_topology(path)


def test_missing_yaml_file():
    with pytest.raises(UserError, match=r"topology file 'nowhere/g.yaml' does not exist"):
        get_topology("nowhere/g.yaml")


def test_family_choices_and_default_build_is_bifpn():
    family = load_family(FAMILY)
    assert family.choices() == {"node5_P6": 2, "node6_P5": 3, "node7_P4": 3, "node8_P3": 2,
                                "node9_P4": 3, "node10_P5": 3, "node11_P6": 3, "node12_P7": 2}
    assert family.num_graphs == 1944
    topo = family.build({key: 0 for key in family.choices()})
    assert topo.nodes == get_topology("bifpn").nodes
    assert topo.name == "bifpn_family-0.0.0.0.0.0.0.0"


def test_family_every_build_is_valid_and_round_trips():
    family = load_family(FAMILY)
    keys, counts = zip(*family.choices().items())
    strings = set()
    for combo in itertools.product(*(range(c) for c in counts)):
        topo = family.build(dict(zip(keys, combo)))
        assert get_topology(topo.to_string()) == topo
        strings.add(topo.to_string())
    assert len(strings) == 1944
    picks = dict.fromkeys(keys, 0) | {"node9_P4": 1, "node12_P7": 1}
    assert family.build(picks).to_string() == (
        "bifpn_family-0.0.0.0.1.0.0.1@P3-P7:P6=3+4,P5=2+5,P4=1+6,P3=0+7,P4=7+8,P5=2+6+9,P6=3+5+10,P7=4+11+5")


def test_family_build_errors():
    family = load_family(FAMILY)
    picks = dict.fromkeys(family.choices(), 0)
    with pytest.raises(UserError, match=r"decision 'node9_P4' must be in 0..2, but got 3"):
        family.build(picks | {"node9_P4": 3})
    with pytest.raises(UserError, match=r"missing decision 'node12_P7'"):
        family.build({k: v for k, v in picks.items() if k != "node12_P7"})
    with pytest.raises(UserError, match=r"unknown decision of topology family 'bifpn_family' 'node13_P7'"):
        family.build(picks | {"node13_P7": 0})


def test_family_rejects_a_bad_candidate_at_load(tmp_path):
    path = tmp_path / "fam.yaml"
    path.write_text("name: fam\nmin_level: 3\nmax_level: 4\nnodes:\n"
                    "  - {level: 4, candidates: [[0, 1], [1, 3]]}\n  - {level: 3, inputs: [0, 2]}\n")
    with pytest.raises(UserError, match=r"topology family 'fam' node 2 \(P4\): input 3 does not exist yet"):
        load_family(path)


@pytest.mark.parametrize("alias, name", [("attn", "softmax"), ("fastattn", "fast"), ("channel_attn", "channel_softmax"),
                                         ("channel_fastattn", "channel_fast")] + [(f, f) for f in FUSIONS])
def test_fusion_aliases(alias, name):
    assert canonical_fusion(alias) == name


def test_unknown_fusion_lists_names():
    with pytest.raises(UserError, match=r"unknown fusion 'xyz' \(valid names: attn, channel_attn, channel_fast, "
                                        r"channel_fastattn, channel_softmax, fast, fastattn, softmax, sum\)"):
        canonical_fusion("xyz")
    with pytest.raises(UserError, match=r"unknown fusion 'fasst' \(close names: fast, fastattn"):
        canonical_fusion("fasst")
