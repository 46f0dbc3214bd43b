import pytest

from scalesearch.errors import UserError
from scalesearch.registry import Registry


def test_registered_and_declared_members_share_one_shape():
    family = Registry("widget")

    @family.register("square")
    def square(x):
        return x * x

    family.declare("dumps", "json:dumps")
    assert family.choices() == ("square", "dumps") and "dumps" in family and len(family) == 2
    assert family.get("square")(3) == 9
    assert family.get("dumps")([1]) == "[1]"  # imported on first use
    assert list(family) == ["square", "dumps"]


def test_unknown_name_is_one_user_error_with_close_names():
    family = Registry("widget")
    family.add("square", 1)
    family.add("circle", 2)
    with pytest.raises(UserError, match=r"unknown widget 'sqare' \(close names: square\)"):
        family.get("sqare")


def test_a_name_is_registered_once():
    family = Registry("widget")
    family.add("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        family.declare("a", "json:dumps")


def test_items_and_indexing_read_like_the_member_table():
    family = Registry("widget")
    family.add("a", 1)
    family.declare("b", "json:dumps")
    assert family["a"] == 1 and [name for name, _ in family.items()] == ["a", "b"]
    with pytest.raises(UserError, match="unknown widget 'c'"):
        family["c"]


# ---- every plug-in family has this one shape -------------------------------------------------------------

def _families() -> dict[str, Registry]:
    from scalesearch.cli import COMMANDS
    from scalesearch.measure.latency import RUNTIMES
    from scalesearch.metrics import METRICS
    from scalesearch.report.build import SECTIONS
    from scalesearch.search.backend import BACKENDS
    from scalesearch.search.samplers import PRUNERS, SAMPLERS
    from scalesearch.topology import GENERATORS

    return {"backend": BACKENDS, "sampler": SAMPLERS, "pruner": PRUNERS, "metric": METRICS, "topology": GENERATORS,
            "runtime": RUNTIMES, "command": COMMANDS, "section": SECTIONS}


@pytest.mark.parametrize("family", sorted(_families()))
def test_every_family_is_a_registry_with_close_name_errors(family):
    registry = _families()[family]
    assert isinstance(registry, Registry) and len(registry) >= 2
    first = registry.choices()[0]
    with pytest.raises(UserError, match=f"unknown {registry.kind} '{first}x' \\(close names: {first}"):
        registry.get(first + "x")


def test_the_published_members():
    families = _families()
    assert families["backend"].choices() == ("optuna", "ray")
    assert families["sampler"].choices() == ("tpe", "nsga2", "nsga3", "random", "grid", "gp", "qmc", "cmaes",
                                             "brute_force")
    assert families["pruner"].choices() == ("none", "median", "successive_halving", "hyperband")
    assert families["topology"].choices() == ("fpn", "panet", "bifpn", "qufpn")
    assert families["runtime"].choices() == ("torch", "onnxruntime")


def test_sampler_and_pruner_facts_live_on_their_entries():
    from scalesearch.config_parts import MULTI_OBJECTIVE_PRUNERS, SINGLE_OBJECTIVE_SAMPLERS
    from scalesearch.search.samplers import PRUNERS, SAMPLERS

    assert SINGLE_OBJECTIVE_SAMPLERS == ("cmaes",) and SAMPLERS["cmaes"].single_objective
    assert MULTI_OBJECTIVE_PRUNERS == ("none", "successive_halving") and not PRUNERS["median"].multi_objective


@pytest.mark.parametrize("name", ["fpn", "panet", "bifpn", "qufpn"])
def test_each_topology_generator_builds_its_own_name(name):
    from scalesearch.topology import GENERATORS

    assert GENERATORS.get(name)(3, 7).name == name


def test_cli_commands_and_backend_choices_come_from_the_registries():
    import argparse

    from scalesearch.cli import COMMANDS, build_parser
    from scalesearch.search.backend import BACKENDS

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert tuple(sub.choices) == COMMANDS.choices()
    backend = next(a for a in sub.choices["run"]._actions if a.dest == "backend")
    assert tuple(backend.choices) == BACKENDS.choices()


def test_config_validation_reads_the_registry(tmp_path, monkeypatch):
    """A new member is one entry: a sampler registered anywhere is a valid ``search.sampler``."""
    import yaml

    from scalesearch import config_parts
    from scalesearch.config import load_study
    from scalesearch.search.samplers import Sampler

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "t", "space": {"phi": 0}, "search": {"sampler": "mine"}}))
    with pytest.raises(UserError, match="search.sampler: unknown sampler 'mine'"):
        load_study(study)
    samplers = Registry("sampler")
    samplers.add("mine", Sampler(build=lambda config: None))
    monkeypatch.setattr(config_parts, "SAMPLERS", samplers)
    assert load_study(study).search.sampler == "mine"


def test_validating_every_member_name_imports_no_engine(tmp_path):
    """Backends, samplers and pruners are named in a study without importing Optuna or Ray (torch: the space's
    weights check, not a registry)."""
    import subprocess
    import sys

    code = ("import sys, yaml\n"
            "from scalesearch.config import load_study\n"
            "from scalesearch.search.backend import BACKENDS\n"
            "from scalesearch.search.samplers import PRUNERS, SAMPLERS\n"
            "train = {'steps': 4, 'eval_every': 2}\n"
            "for search in ([{'backend': b} for b in BACKENDS] + [{'sampler': s} for s in SAMPLERS]\n"
            "               + [{'pruning': p} for p in PRUNERS]):\n"
            f"    open({str(tmp_path / 's.yaml')!r}, 'w').write(yaml.safe_dump(\n"
            "        {'name': 't', 'space': {'phi': [0, 1]}, 'search': search, 'train': train}))\n"
            f"    load_study({str(tmp_path / 's.yaml')!r})\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'ray'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_a_member_registered_temporarily_is_gone_after_the_block():
    family = Registry("widget")
    family.add("square", 1)
    with family.temporarily("fake", 2) as member:
        assert member == 2 and family.get("fake") == 2 and family.choices() == ("square", "fake")
    assert "fake" not in family and family.choices() == ("square",)
