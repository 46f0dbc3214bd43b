"""The feature cache (``scalesearch.training.feature_cache``): stored maps equal the backbone's, training on them
ends where a live frozen-backbone training ends, entries are built once per (image, flip, resolution) whoever asks,
and what the cache cannot hold (too many bytes, scale jitter) is refused in one line naming the setting."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from scalesearch.data import resolve_dataset, synthetic_dataset
from scalesearch.data import transforms as T
from scalesearch.errors import UserError
from scalesearch.model import build_detector, input_normalization
from scalesearch.model.backbone import build_backbone
from scalesearch.model.detector import part_seed
from scalesearch.search.estimators.cached import train_on_features
from scalesearch.spec import DetectorSpec
from scalesearch.training import feature_cache as fc
from scalesearch.training import train
from scalesearch.training.train import TrainConfig

TINY = DetectorSpec(resolution=128, width_multiplier=0.25, depth_multiplier=0.25, fpn_channels=16, fpn_repeats=1,
                    head_repeats=1, num_classes=4)
CFG = TrainConfig(steps=4, batch_size=4, eval_batch_size=8, seed=3)
# float16 keeps 11 significant bits: a stored map is within 2**-11 (4.9e-4) of the float32 one, relatively; the
# backbone run on a batch of 16 vs one image differs by ~1e-6 in float32 (another conv algorithm).
F16_RTOL, F16_ATOL = 2**-10, 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny models gain nothing from more, and the tests may share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = synthetic_dataset(tmp_path_factory.mktemp("syn"), num_train=8, num_val=4, image_size=128, max_object=64,
                             max_objects=4)
    return resolve_dataset(root, "train"), resolve_dataset(root, "val")


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """TINY with "pretrained" weights: a seeded random backbone saved as a state-dict file (no download)."""
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.manual_seed(0)
    torch.save(build_backbone(TINY, weights=False).state_dict(), path)
    return TINY.replace(weights=str(path))


@pytest.fixture
def calls(monkeypatch):
    """Images the backbone is run on, counted (``feature_cache.run_backbone``)."""
    seen: list[int] = []
    run = fc.run_backbone

    def counted(backbone, images):
        seen.append(len(images))
        return run(backbone, images)

    monkeypatch.setattr(fc, "run_backbone", counted)
    return seen


def test_the_flip_draw_is_the_datasets(pairs, spec):
    dataset = train.make_dataset(pairs[0], "train", spec, CFG, train=True)
    plain = T.normalize_pad(torch.from_numpy(dataset.base_image(2)).permute(2, 0, 1), 128, dataset.normalization)
    flipped = T.normalize_pad(torch.from_numpy(dataset.base_image(2)).permute(2, 0, 1).flip(-1), 128,
                              dataset.normalization)
    draws = [fc.flip_of(seed, CFG.flip_prob) for seed in range(40)]
    assert 10 < sum(draws) < 30  # both states occur
    for seed, flip in enumerate(draws):
        assert torch.equal(dataset[(2, seed)][0], flipped if flip else plain)


def test_cached_features_equal_the_backbone_output_for_the_same_image_and_flip(pairs, spec):
    data = fc.FeatureCache(None).get(spec, *pairs, CFG)
    dataset = train.make_dataset(pairs[0], "train", spec, CFG, train=True)
    backbone = build_backbone(spec).eval()
    assert data.flips == (False, True) and data.images == 8 and len(data.val.targets) == 4
    for flip in (False, True):
        for i in range(8):
            image = torch.from_numpy(dataset.base_image(i)).permute(2, 0, 1)
            image = T.normalize_pad(image.flip(-1) if flip else image, 128, input_normalization(spec))
            with torch.no_grad():
                expected = backbone(image[None])
            row = data.flips.index(flip) * 8 + i
            for level, want in zip(data.train.levels, expected):
                assert level.dtype == torch.float16
                torch.testing.assert_close(level[row].float(), want[0], rtol=F16_RTOL, atol=F16_ATOL)


def _live_frozen(spec, pairs, cfg):
    """A live training with the backbone frozen: its weights without gradient, its BatchNorm as loaded."""
    model = build_detector(spec, init_seed=cfg.seed)
    model.backbone.requires_grad_(False)
    torch.manual_seed(part_seed(cfg.seed, "train"))
    model = model.to(memory_format=torch.channels_last)
    dataset = train.make_dataset(pairs[0], "train", spec, cfg, train=True)
    loop, _ = train.train_loop(model, train.detector_loss(spec), train.train_loader(dataset, cfg), cfg, progress=False)
    return loop, {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}


# float32 storage: the same computation, up to summation order (observed 1.2e-7); float16: the stored maps'
# rounding carried through 4 AdamW steps at lr 1e-2 (observed 7.7e-5, while weights move by up to 1e-2 per step).
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-6), (torch.float16, 1e-3)])
def test_steps_on_cached_features_end_where_a_live_frozen_backbone_ends(pairs, spec, dtype, atol):
    cfg = TrainConfig(steps=4, batch_size=4, eval_batch_size=8, seed=3, freeze_backbone_bn=True, scored="raw")
    cached = train_on_features(spec, fc.FeatureCache(None, dtype=dtype).get(spec, *pairs, cfg), cfg)
    loop, live = _live_frozen(spec, pairs, cfg)
    mine = cached.model.state_dict()
    start = {k: v for k, v in build_detector(spec, init_seed=3).state_dict().items() if k in live}
    assert mine.keys() == live.keys()
    assert max((live[k] - start[k]).abs().max() for k in live if live[k].is_floating_point()) > 1e-2  # it trained
    for key in live:
        torch.testing.assert_close(mine[key], live[key], rtol=0, atol=atol, msg=key)
    assert cached.losses == pytest.approx(loop.losses, rel=1e-6 if dtype == torch.float32 else 1e-4)


def test_an_entry_is_built_once_and_read_back_by_another_cache(pairs, spec, tmp_path, calls):
    first = fc.FeatureCache(tmp_path).get(spec, *pairs, CFG)
    assert sum(calls) == 8 * 2 + 4 and first.built and first.path.is_file()
    again = fc.FeatureCache(tmp_path).get(spec, *pairs, CFG)
    assert sum(calls) == 20 and not again.built  # a rerun or another worker: read from disk
    for a, b in zip(first.train.levels + first.val.levels, again.train.levels + again.val.levels):
        assert torch.equal(a, b)
    fc.FeatureCache(tmp_path).get(spec.replace(resolution=160), *pairs, CFG)
    assert sum(calls) == 40  # another resolution, another entry
    assert len(list(tmp_path.glob("features-*.pt"))) == 2


def test_concurrent_workers_build_an_entry_once(pairs, spec, tmp_path, calls):
    """Two caches asking at once (threads: each holds its own lock file handle, as processes do)."""
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda _: fc.FeatureCache(tmp_path).get(spec, *pairs, CFG), range(2)))
    assert sum(calls) == 20 and sorted(e.built for e in found) == [False, True]


def test_another_process_reads_the_entry_back(pairs, spec, tmp_path):
    fc.FeatureCache(tmp_path).get(spec, *pairs, CFG)
    script = (
        "import sys; from scalesearch.training import feature_cache as fc; from scalesearch.training.train import "
        "TrainConfig; from scalesearch.spec import DetectorSpec; import json\n"
        "n = []; run = fc.run_backbone\n"
        "fc.run_backbone = lambda b, x: (n.append(len(x)), run(b, x))[1]\n"
        "spec, pairs = DetectorSpec.from_dict(json.loads(sys.argv[1])), json.loads(sys.argv[2])\n"
        "fc.FeatureCache(sys.argv[3]).get(spec, *pairs, TrainConfig(steps=4, batch_size=4, seed=3))\n"
        "print('images', sum(n))\n"
    )
    import json

    args = [json.dumps(spec.to_dict()), json.dumps([[str(p) for p in pair] for pair in pairs]), str(tmp_path)]
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "images 0" and "read back" in out.stderr


def test_a_cache_over_its_memory_limit_is_refused_in_one_line(pairs, spec, tmp_path, calls, monkeypatch):
    with pytest.raises(UserError) as caught:  # 107 kB; the tiny entry is 20 rows x 14.8 kB = 297 kB
        fc.FeatureCache(tmp_path, limit=int(0.0001 * 2**30)).get(spec, *pairs, CFG)
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and message.startswith("search.cache_gb: ")
    assert "efficientnet_b0 at 128 px needs 0.3 MiB (8 train images x 2 flip states + 4 val" in message
    assert "over the 0.1 MiB limit" in message
    assert calls == [] and not list(tmp_path.glob("features-*"))  # refused before computing anything


def test_the_size_is_said_in_one_line(pairs, spec, tmp_path, capsys):
    fc.FeatureCache(tmp_path).get(spec, *pairs, CFG)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("scalesearch run: feature cache efficientnet_b0 128 px: 8 train images x 2 flip state(s) "
                           "+ 4 val = 0.3 MiB torch.float16 (limit 4.00 GiB, search.cache_gb), built in ")


@pytest.mark.parametrize("scale_range", [(0.75, 1.25), (0.8, 0.8)])
def test_scale_jitter_is_refused_naming_the_setting(pairs, spec, scale_range):
    cfg = TrainConfig(steps=4, scale_range=scale_range)
    with pytest.raises(UserError) as caught:
        fc.FeatureCache(None).get(spec, *pairs, cfg)
    assert str(caught.value) == (f"train.scale_range: the cached estimator stores features of unjittered images, so "
                                 f"it must be [1.0, 1.0], but got {list(cfg.scale_range)}")


def test_a_random_backbone_is_refused(pairs):
    with pytest.raises(UserError, match=r"^spec.weights: the cached estimator trains on a frozen pretrained backbone"):
        fc.FeatureCache(None).get(TINY, *pairs, CFG)


@pytest.mark.parametrize("flip_prob, flips", [(0.0, (False,)), (0.5, (False, True)), (1.0, (True,))])
def test_only_the_flip_states_a_training_draws_are_stored(flip_prob, flips):
    assert fc.flips_needed(flip_prob) == flips
    assert all(fc.flip_of(fc.seed_for(f, flip_prob), flip_prob) == f for f in flips)


def test_the_key_follows_weights_resolution_and_data(pairs, spec, tmp_path):
    key = fc.entry_key(spec, *pairs, (False, True), torch.float16)
    assert fc.entry_key(spec.replace(resolution=160), *pairs, (False, True), torch.float16) != key
    assert fc.entry_key(spec.replace(fpn_channels=32, topology="fpn"), *pairs, (False, True), torch.float16) == key
    other = tmp_path / "other.pth"
    torch.manual_seed(1)
    torch.save(build_backbone(TINY, weights=False).state_dict(), other)
    assert fc.entry_key(spec.replace(weights=str(other)), *pairs, (False, True), torch.float16) != key
    assert fc.entry_key(spec, pairs[1], pairs[0], (False, True), torch.float16) != key


def test_the_key_follows_the_images_not_the_folder_path(pairs, spec, tmp_path):
    import os
    import shutil

    train, val = pairs
    key = fc.entry_key(spec, train, val, (False, True), torch.float16)
    moved = tmp_path / "moved"
    shutil.copytree(Path(train[0]), moved, copy_function=shutil.copyfile)  # the bytes, not the times
    for image in moved.iterdir():
        os.utime(image, ns=(1_000_000_000, 1_000_000_000))  # a dataset copied again on another day
    assert fc.entry_key(spec, (moved, train[1]), val, (False, True), torch.float16) == key
    image = json.loads(Path(train[1]).read_text())["images"][0]["file_name"]
    (moved / image).write_bytes((moved / image).read_bytes() + b"\0")  # an edited image
    assert fc.entry_key(spec, (moved, train[1]), val, (False, True), torch.float16) != key
