"""Every shipped study and space file validates, and states its expected run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalesearch.config import load_study, validate_study
from scalesearch.search.space import SearchSpace

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_studies_validate_and_state_their_run_time(path, monkeypatch):
    import yaml

    monkeypatch.chdir(ROOT)
    folder = (yaml.safe_load(path.read_text()).get("dataset") or {}).get("path")
    if folder and folder != "synthetic" and not (ROOT / folder).is_dir():
        pytest.skip(f"{folder} is not on this machine")
    config = load_study(path)
    assert "Expected run time: about" in path.read_text()
    cost_objective = any(o.metric != "map" for o in config.objectives)
    assert config.search.n_trials >= 1 and (config.budgets.flops or cost_objective)  # search under a cost


def test_compound_study_enqueues_the_paper_rule(monkeypatch):
    monkeypatch.chdir(ROOT)
    config = load_study(ROOT / "studies" / "compound_coefficients.yaml")
    (point,) = config.search.enqueue
    spec = SearchSpace(config).resolve(dict(point.params), num_classes=90)
    assert (point.label, spec.fpn_channels, spec.fpn_repeats) == ("paper rule", 32, 1)  # 64 * 1.35**-2 -> 32


def test_topology_space_file_has_conditional_family_decisions(monkeypatch):
    monkeypatch.chdir(ROOT)
    config = validate_study({"name": "t", "space": "spaces/topology_search_space.yaml"})
    space = SearchSpace(config)
    assert list(space.families) == ["spaces/topology_bifpn_family.yaml"]
    assert space.families["spaces/topology_bifpn_family.yaml"].num_graphs == 1944


@pytest.mark.parametrize("path", [p for p in STUDIES if p.stem.startswith("bifpn_vs_panet")], ids=lambda p: p.stem)
def test_shipped_comparison_studies_can_reach_significance(path, monkeypatch):
    from scalesearch.report.stats import design_power_warning

    monkeypatch.chdir(ROOT)
    if "bccd" in path.stem and not (ROOT.parent / "shared" / "datasets" / "bccd").is_dir():
        pytest.skip("the BCCD dataset is not on this machine")
    assert design_power_warning(load_study(path)) is None


@pytest.mark.parametrize("path", [p for p in STUDIES if "bccd" in p.stem], ids=lambda p: p.stem)
def test_bccd_studies_name_their_estimator_row(path, monkeypatch):
    """Each BCCD study's header names the row of the committed estimator table it uses (or keeps, with a reason),
    and that row is an estimator of the kind the study sets."""
    import json
    import re

    monkeypatch.chdir(ROOT)
    if not (ROOT.parent / "shared" / "datasets" / "bccd").is_dir():
        pytest.skip("the BCCD dataset is not on this machine")
    record = json.loads((ROOT / "reports" / "benchmarks" / "estimators.json").read_text())
    jobs = {row["name"]: row["job"] for row in record["rows"] if row["kind"] == "estimator"}
    found = re.search(r"^# Estimator: (\w+), rows? (\w+)", path.read_text(), re.M)
    assert found, "no '# Estimator: NAME, row ROW' line"
    estimator, row = found.groups()
    assert estimator == load_study(path).search.estimator
    assert jobs[row] == estimator
    header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
    assert row == record["first"] or re.search(r"kept:|cannot hold|does not pay", header)  # or it says why not
