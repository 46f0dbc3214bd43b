"""Supernet training (``scalesearch.training.supernet``): the sandwich step trains the largest and the smallest
sub-networks, the distillation term vanishes when student and teacher agree, a step's draw depends on (seed, step)
only, a training killed by SIGKILL resumes at its last checkpoint and ends where an unbroken one ends, and a
sub-network is scored by extract + recalibrate + COCO evaluation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from scalesearch.data import resolve_dataset, synthetic_dataset
from scalesearch.model.backbone import build_backbone
from scalesearch.model.supernet import ElasticSpace, Supernet
from scalesearch.spec import DetectorSpec
from scalesearch.training import feature_cache as fc
from scalesearch.training import supernet as st
from scalesearch.training.train import TrainConfig

TINY = DetectorSpec(resolution=64, width_multiplier=0.25, depth_multiplier=0.25, fpn_channels=16, fpn_repeats=1,
                    head_repeats=1, num_classes=4)
SPACE = ElasticSpace(fpn_channels=(8, 16), fpn_repeats=(1, 2), head_repeats=(1, 2), resolution=(64, 96),
                     fusion=("sum", "fast"), activation=("relu", "swish"))
CFG = TrainConfig(steps=6, batch_size=4, eval_batch_size=8, seed=3, warmup_steps=2, channels_last=False)
HOW = st.SandwichConfig(steps=6, random_children=1, distill_weight=1.0, checkpoint_every=2)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Synthetic data, a seeded random "pretrained" backbone file, and the feature cache folder."""
    root = synthetic_dataset(tmp_path_factory.mktemp("syn"), num_train=8, num_val=4, image_size=96, max_object=48,
                             max_objects=3)
    weights = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.manual_seed(0)
    torch.save(build_backbone(TINY, weights=False).state_dict(), weights)
    return {"root": root, "weights": weights, "cache": tmp_path_factory.mktemp("features")}


def load(setup):
    spec = TINY.replace(weights=str(setup["weights"]))
    cache = fc.FeatureCache(setup["cache"])
    pairs = resolve_dataset(setup["root"], "train"), resolve_dataset(setup["root"], "val")
    data = {r: cache.get(spec.replace(resolution=r), *pairs, CFG) for r in SPACE.resolution}
    channels = [level.shape[1] for level in data[64].train.levels]
    spec = spec.replace(num_classes=data[64].train.info.num_classes)
    return spec, data, channels


def test_distillation_vanishes_at_agreement_and_is_positive_otherwise():
    logits = torch.randn(2, 50, 3)
    one = torch.tensor(1.0)
    assert st.distill_loss(logits, logits, one).abs() < 1e-5
    assert st.distill_loss(logits + 1.0, logits, one) > 0.1


def test_a_steps_draw_depends_on_seed_and_step_only():
    a = st.step_plan(SPACE, HOW, 0, 5, images=8, batch=4, flip_prob=0.5)
    b = st.step_plan(SPACE, HOW, 0, 5, images=8, batch=4, flip_prob=0.5)
    c = st.step_plan(SPACE, HOW, 0, 6, images=8, batch=4, flip_prob=0.5)
    assert a == b and a != c
    assert a.children[0]["fpn_channels"] == 16 and a.children[0]["fpn_repeats"] == 2  # the largest first
    assert a.children[1]["fpn_channels"] == 8 and a.children[1]["head_repeats"] == 1  # then the smallest
    assert len(a.children) == 2 + HOW.random_children
    assert {child["resolution"] for child in a.children} == {a.resolution}
    draws = {st.step_plan(SPACE, HOW, 0, s, 8, 4, 0.5).resolution for s in range(40)}
    assert draws == {64, 96}  # multi-resolution


def test_the_sandwich_step_trains_the_largest_and_the_smallest(setup):
    spec, data, channels = load(setup)
    net = Supernet(spec, SPACE, channels, init_seed=0).train()
    plan = st.StepPlan(64, [(0, False), (1, True), (2, False), (3, False)],
                       [SPACE.largest(resolution=64), SPACE.smallest(resolution=64)])
    before = {k: v.detach().clone() for k, v in net.weights.items()}
    loss = st.sandwich_step(net, plan, data[64], net.spec(SPACE.largest()), st.SandwichConfig(steps=1))
    assert loss > 0
    with torch.no_grad():
        for p in net.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    # The smallest sub-network's own slice (first 8 channels) moved, and the largest's outer part (channels 8..16,
    # which only the largest uses here) moved too; a layer neither child has (none: both have cell 0) aside.
    key = "class_net__convs__0__conv_pw__weight"
    delta = (net.weights[key] - before[key]).abs()
    assert delta[:8, :8].sum() > 0 and delta[8:, 8:].sum() > 0
    deep = "class_net__convs__1__conv_pw__weight"  # head layer 2: only the largest has it
    assert (net.weights[deep] - before[deep]).abs().sum() > 0


TRAIN_SCRIPT = textwrap.dedent("""
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    import test_supernet_training as t
    from scalesearch.model.supernet import Supernet
    from scalesearch.training import supernet as st
    torch.set_num_threads(1)
    setup = {{"root": {root!r}, "weights": {weights!r}, "cache": {cache!r}}}
    spec, data, channels = t.load(setup)
    kill_at = int(sys.argv[1])
    save = st.save_checkpoint
    def saving(path, key, net, opt, ema, step, *rest):
        save(path, key, net, opt, ema, step, *rest)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    st.save_checkpoint = saving
    torch.manual_seed(0)
    net = Supernet(spec, t.SPACE, channels, init_seed=t.CFG.seed)
    out = st.train_supernet(net, data, t.CFG, t.HOW, folder={folder!r}, key="k")
    print("resumed_from", out.resumed_from, "steps", out.steps)
    torch.save(out.model.state_dict(), {result!r})
""")


def run_training(setup, folder, result, kill_at):
    script = TRAIN_SCRIPT.format(tests=os.path.dirname(__file__), root=str(setup["root"]),
                                 weights=str(setup["weights"]), cache=str(setup["cache"]), folder=str(folder),
                                 result=str(result))
    return subprocess.run([sys.executable, "-c", script, str(kill_at)], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_killed_training_resumes_at_its_checkpoint_and_ends_as_an_unbroken_one(setup, tmp_path):
    load(setup)  # build the feature entries here, so both processes read them back
    unbroken = run_training(setup, tmp_path / "a", tmp_path / "a.pt", kill_at=-1)
    assert unbroken.returncode == 0, unbroken.stderr[-2000:]
    assert "resumed_from 0 steps 6" in unbroken.stdout
    killed = run_training(setup, tmp_path / "b", tmp_path / "b.pt", kill_at=4)
    assert killed.returncode == -9 and not (tmp_path / "b.pt").exists()
    assert torch.load(tmp_path / "b" / st.CHECKPOINT, weights_only=False)["step"] == 4
    resumed = run_training(setup, tmp_path / "b", tmp_path / "b.pt", kill_at=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed_from 4 steps 6" in resumed.stdout
    a, b = torch.load(tmp_path / "a.pt"), torch.load(tmp_path / "b.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_training_in_process_resumes_from_stop_after(setup, tmp_path):
    """The same resume, in-process (fast): 3 steps, stop, then the rest, equal to 6 unbroken steps."""
    spec, data, channels = load(setup)
    how = st.SandwichConfig(steps=4, random_children=1, checkpoint_every=1)

    def fresh():
        torch.manual_seed(0)
        return Supernet(spec, SPACE, channels, init_seed=1)

    whole = st.train_supernet(fresh(), data, CFG, how, folder=tmp_path / "x", key="k")
    part = st.train_supernet(fresh(), data, CFG, how, folder=tmp_path / "y", key="k", stop_after=2)
    assert part.steps == 2
    rest = st.train_supernet(fresh(), data, CFG, how, folder=tmp_path / "y", key="k")
    assert rest.resumed_from == 2 and rest.steps == 4 and rest.losses == whole.losses
    for (k, a), b in zip(whole.model.state_dict().items(), rest.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    other = st.train_supernet(fresh(), data, CFG, how, folder=tmp_path / "y", key="other settings", stop_after=1)
    assert other.resumed_from == 0  # a checkpoint of other settings is not resumed


def test_a_subnetwork_is_scored_after_recalibration(setup):
    spec, data, channels = load(setup)
    net = Supernet(spec, SPACE, channels, init_seed=0)
    trained = st.train_supernet(net, data, CFG, st.SandwichConfig(steps=3, random_children=1))
    choice = SPACE.smallest(resolution=96)
    metrics, times = st.score_subnetwork(trained.model, choice, data[96], CFG, calib_images=8)
    assert set(metrics) >= {"map", "map50"} and 0.0 <= metrics["map"] <= 1.0
    assert times["recalibrate"] > 0 and times["evaluate"] > 0
    again, _ = st.score_subnetwork(trained.model, choice, data[96], CFG, calib_images=8)
    assert again == metrics  # deterministic: the same calibration images, the same weights


def test_a_finished_training_is_loaded_from_its_final_file_without_training(setup, tmp_path):
    """``supernet_final.pt`` (what a run folder keeps of a finished training) alone restores the scored weights: no step is trained, the
    cost and losses are the training's, and a sub-network scores exactly as on the trained supernet. A file of
    another key, or of fewer steps than asked, is not taken."""
    spec, data, channels = load(setup)
    how = st.SandwichConfig(steps=3, random_children=1, checkpoint_every=2)

    def fresh():
        torch.manual_seed(0)
        return Supernet(spec, SPACE, channels, init_seed=1)

    trained = st.train_supernet(fresh(), data, CFG, how, folder=tmp_path, key="k")
    (tmp_path / st.CHECKPOINT).unlink()  # what a new checkout has: the committed final file only
    saved = torch.load(tmp_path / st.FINAL, weights_only=False)
    assert set(saved) == {"format", "key", "step", "seconds", "cpu_seconds", "losses", "scored", "machine", "weights"}
    assert "optimizer" not in saved and saved["step"] == 3 and saved["scored"] == trained.scored
    torch.load(tmp_path / st.FINAL, weights_only=True)  # plain data: loads without running pickle code

    loaded = st.train_supernet(fresh(), data, CFG, how, folder=tmp_path, key="k")
    assert loaded.loaded_final and not trained.loaded_final and loaded.machine == saved["machine"]
    assert loaded.resumed_from == loaded.steps == 3 and loaded.losses == trained.losses
    assert (loaded.seconds, loaded.cpu_seconds) == (trained.seconds, trained.cpu_seconds)
    assert not (tmp_path / st.CHECKPOINT).exists()  # nothing was trained
    for (name, a), b in zip(trained.model.state_dict().items(), loaded.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    choice = SPACE.largest(resolution=96)
    scored = st.score_subnetwork(trained.model, choice, data[96], CFG, calib_images=8)[0]
    assert st.score_subnetwork(loaded.model, choice, data[96], CFG, calib_images=8)[0] == scored

    other = st.train_supernet(fresh(), data, CFG, how, folder=tmp_path, key="other settings", stop_after=1)
    assert other.resumed_from == 0 and other.steps == 1  # another key trains
    longer = st.SandwichConfig(steps=4, random_children=1, checkpoint_every=2)
    again = st.train_supernet(fresh(), data, CFG, longer, folder=tmp_path, key="k", stop_after=1)
    assert again.resumed_from == 0 and again.steps == 1  # the final file holds 3 steps, 4 are asked: trained


def test_a_final_file_that_does_not_load_is_trained_over_with_one_line(setup, tmp_path, capsys):
    """A committed file can be anything (a Git LFS pointer, a conflicted merge): said in one line, then trained."""
    spec, data, channels = load(setup)
    how = st.SandwichConfig(steps=2, random_children=1, checkpoint_every=2)
    (tmp_path / st.FINAL).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    torch.manual_seed(0)
    result = st.train_supernet(Supernet(spec, SPACE, channels, init_seed=1), data, CFG, how, folder=tmp_path, key="k")
    assert not result.loaded_final and result.resumed_from == 0 and result.steps == 2
    said = [line for line in capsys.readouterr().err.splitlines() if st.FINAL in line]
    assert len(said) == 1 and "supernet_final.pt not loaded (" in said[0] and said[0].endswith("training the supernet")
    assert torch.load(tmp_path / st.FINAL, weights_only=True)["step"] == 2  # replaced by the finished training's
