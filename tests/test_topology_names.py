"""Short names of generated topologies: stable content hashes of the canonical graph string."""

from __future__ import annotations

from scalesearch.topology_names import canonical, is_generated, short_name

GRAPH = ("bifpn_family-1.1.1.1.0.0.2.1@P3-P7:P6=3+4+2,P5=2+5+3,P4=1+6+2,P3=0+7+1,P4=1+7+8,P5=2+6+9,P6=3+5+10+4,"
         "P7=4+11+5")


def test_short_name_is_pinned_across_runs_and_machines():
    assert short_name(GRAPH) == "gen-b7af5755"  # sha256 of the canonical string: a change here renames reports


def test_the_same_graph_written_differently_keeps_its_name():
    spaced = "x@P3-P7: P3=0 , P4=1~fastattn,P5=2,P6=3,P7=4"
    assert canonical(spaced) == "x@P3-P7:P3=0,P4=1~fast,P5=2,P6=3,P7=4"
    assert short_name(spaced) == short_name("x@P3-P7:P3=0,P4=1~fast,P5=2,P6=3,P7=4")
    assert short_name("x@P3-P7:P3=0,P4=1,P5=2,P6=3,P7=4") != short_name(spaced)


def test_builtins_and_files_keep_their_names():
    for name in ("fpn", "bifpn", "spaces/my_graph.yaml"):
        assert not is_generated(name) and short_name(name) == name
    assert is_generated(GRAPH) and len(short_name(GRAPH, digits=6)) == len("gen-") + 6


def test_the_bifpn_family_gets_distinct_names():
    from scalesearch.search.space import SearchSpace
    from scalesearch.config import validate_study

    import itertools

    family = SearchSpace(validate_study({"name": "t", "space": "spaces/topology_search_space.yaml"})).families[
        "spaces/topology_bifpn_family.yaml"]
    names, counts = zip(*family.choices().items())
    graphs = [family.build(dict(zip(names, picks))).to_string()
              for picks in itertools.product(*(range(c) for c in counts))]
    assert len(set(graphs)) == 1944 and len({short_name(g) for g in graphs}) == 1944
