"""Backbone features computed once: a frozen pretrained backbone's multi-level maps for every (train image, flip)
and every val image at one resolution, stored as float16, and the views that train the rest of the detector on
them (``scalesearch.search.estimators.cached``).

A trial that fixes a pretrained backbone and keeps its BatchNorm statistics sees, at step t, the backbone's
output for the (image, flip) its seeded loader draws; that output is a function of (backbone, weights,
resolution, normalisation, image, flip) only, so it is computed once (backbone in eval mode, no gradient) and
every trial, worker and rerun reads it back. Scale jitter and cropping draw a new image per item and cannot be
stored: ``check_augmentation`` refuses them.

Storage: one file per entry, ``features-<backbone>-<R>-<digest>.pt`` under the cache folder, the digest over
everything the features depend on (``entry_key``). Entries are built lazily, by the first worker that needs one,
under an exclusive ``flock`` on ``<file>.lock`` (the others wait, then read); the file is written to a temp file
and moved over its name, so a reader never sees half of one. Read back memory-mapped, so the workers of one
machine share its pages. Targets (boxes, labels) are not stored: they come from the dataset each time, the very
code a live training uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from scalesearch.errors import UserError
from scalesearch.files import digest
from scalesearch.spec import DetectorSpec, level_size

SETTING = "search.cache_gb"  # the study setting that carries the limit (named in messages)
DEFAULT_LIMIT_GB = 4.0  # as the decoded-image cache of ``CocoDetection``
FORMAT = 1  # bump when the stored layout changes: old entries are then ignored, not misread
CHUNK = 16  # images per backbone call while building


# ----------------------------------------------------------------------------- what can be cached
def check_augmentation(scale_range: tuple[float, float]) -> None:
    """``UserError`` unless the training augmentation is flips only: scale jitter + crop (``train.scale_range``
    other than (1, 1)) makes a new image per item, which a feature cache cannot hold."""
    if tuple(float(s) for s in scale_range) != (1.0, 1.0):
        raise UserError(f"train.scale_range: the cached estimator stores features of unjittered images, so it must "
                        f"be [1.0, 1.0], but got {list(scale_range)}")


def flip_of(item_seed: int, flip_prob: float) -> bool:
    """Whether ``CocoDetection`` flips the item drawn with ``item_seed`` when ``scale_range`` is (1, 1):
    ``transforms.train_augment`` then draws no scale factor, only (fx, fy, flip) = ``rng.random(3)``."""
    return bool(np.random.default_rng(item_seed).random(3)[2] < flip_prob)


def flips_needed(flip_prob: float) -> tuple[bool, ...]:
    """The flip states a training draws: none, both, or always."""
    return (True,) if flip_prob >= 1 else (False,) if flip_prob <= 0 else (False, True)


def seed_for(flip: bool, flip_prob: float) -> int:
    """The smallest item seed whose draw gives ``flip`` (so ``dataset[(i, seed)]`` is image i in that state)."""
    return next(s for s in range(10_000) if flip_of(s, flip_prob) == flip)




# ----------------------------------------------------------------------------------------- entries
@dataclass
class FeatureSet:
    """One split's features: ``levels`` (``Tensor[rows, C_l, R / 2**l, R / 2**l]`` float16 per backbone level) and
    per row the dataset's ``targets``; ``info`` (class ids) and ``coco`` (ground truth) of the dataset."""

    levels: list[Tensor]
    targets: list[dict[str, Any]]
    info: Any
    coco: Any

    def batch(self, rows: Tensor, channels_last: bool = False) -> list[Tensor]:
        """float32 maps of ``rows`` (``Tensor[B]`` int64), channels-last when the model's weights are."""
        out = [level.index_select(0, rows.cpu()).float().to(rows.device) for level in self.levels]
        return [f.contiguous(memory_format=torch.channels_last) for f in out] if channels_last else out


@dataclass
class CachedData:
    """A resolution's entry: ``train`` rows are ``flips.index(flip) * images + i``, ``val`` rows are images;
    ``bytes`` held, ``path`` on disk (None: memory only), ``built`` here (False: read back)."""

    train: FeatureSet
    val: FeatureSet
    flips: tuple[bool, ...]
    images: int
    bytes: int
    path: Path | None = None
    built: bool = False
    seconds: float = 0.0


def file_sha(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised per path, size and modification time)."""
    stat = Path(path).stat()
    return _file_sha(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 16)
def _file_sha(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def entry_key(spec: DetectorSpec, train_pair: tuple[Path, Path], val_pair: tuple[Path, Path],
              flips: tuple[bool, ...], dtype: torch.dtype) -> dict[str, Any]:
    """Everything the stored features depend on: the backbone (name, multipliers, padding, levels, the weights
    file's bytes), resolution, input normalisation, each split's annotation file bytes and its images' names and
    bytes (``images_stamp``), flips."""
    import timm

    from scalesearch.model import input_normalization
    from scalesearch.model.backbone import backbone_levels
    from scalesearch.model.weights import weights_file

    return {
        "format": FORMAT, "timm": timm.__version__, "backbone": spec.backbone, "width": spec.width_multiplier,
        "depth": spec.depth_multiplier, "tf_compat": spec.tf_compat, "levels": backbone_levels(spec),
        "weights": file_sha(weights_file(spec)), "resolution": spec.resolution,
        "normalization": input_normalization(spec), "flips": list(flips), "dtype": str(dtype),
        "data": [[images_stamp(images, ann), file_sha(ann)] for images, ann in (train_pair, val_pair)],
    }


def images_stamp(images: str | Path, ann: str | Path) -> str:
    """Digest of (file name, sha256 of the bytes) of every image the annotation file names, read in the images
    folder: an edited or replaced image rebuilds the entry, and the same bytes under another path or with other
    modification times (a moved checkout, a dataset copied again) reuse it. Hashing is memoised per (path, size,
    modification time) within a process; a dataset small enough for a feature cache hashes in well under a second
    (BCCD, 364 images, 10 MB)."""
    import json

    names = sorted({image["file_name"] for image in json.loads(Path(ann).read_text()).get("images", [])})
    stamps = []
    for name in names:
        try:
            stamps.append([name, file_sha(Path(images) / name)])
        except OSError:
            stamps.append([name, None])  # the dataset loader names a missing file when it is read
    return digest(stamps)


def row_bytes(spec: DetectorSpec, channels: list[int], dtype: torch.dtype) -> int:
    """Bytes of one image's maps: sum over backbone levels of C_l x (R / 2**l)^2 x the element size."""
    from scalesearch.model.backbone import backbone_levels

    size = torch.empty((), dtype=dtype).element_size()
    return sum(c * level_size(spec.resolution, lvl) ** 2 * size for c, lvl in zip(channels, backbone_levels(spec)))


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created), waiting for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_atomic(data: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temp file beside ``path``, then ``os.replace`` over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ building
def run_backbone(backbone: nn.Module, images: Tensor) -> list[Tensor]:
    """The backbone's maps of a batch, in eval mode, without gradient (one call per batch; tests count them)."""
    with torch.inference_mode():
        return backbone(images)


def compute_levels(backbone: nn.Module, dataset: Any, keys: list[Any], dtype: torch.dtype, progress: bool = False,
                   desc: str = "features") -> list[Tensor]:
    """``backbone``'s maps of ``dataset[key][0]`` for every key, stacked as ``dtype`` ``Tensor[N, C_l, H_l, W_l]``
    (images are made and dropped chunk by chunk)."""
    from tqdm import tqdm

    weight = next(backbone.parameters())
    channels_last = weight.is_contiguous(memory_format=torch.channels_last)
    levels: list[Tensor] = []
    for start in tqdm(range(0, len(keys), CHUNK), disable=not progress, desc=desc, unit="batch", leave=False):
        batch = torch.stack([dataset[k][0] for k in keys[start:start + CHUNK]]).to(weight.device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        maps = run_backbone(backbone, batch)
        if not levels:
            levels = [torch.empty((len(keys), *m.shape[1:]), dtype=dtype) for m in maps]
        for level, m in zip(levels, maps):
            level[start:start + len(m)] = m.to("cpu", dtype)
    return levels


def frozen_backbone(spec: DetectorSpec) -> nn.Module:
    """``spec``'s pretrained backbone in eval mode, gradients off, channels-last (the faster layout on CPU)."""
    from scalesearch.model.backbone import build_backbone

    backbone = build_backbone(spec, weights=True).eval().requires_grad_(False)
    return backbone.to(memory_format=torch.channels_last)


class FeatureCache:
    """Features per (backbone, weights, resolution, data, flips): built once, kept on disk under ``folder``
    (None: memory only) and, in this process, in memory up to ``limit`` bytes (least recently used dropped
    first; they stay on disk). An entry larger than the limit is refused (``UserError`` naming
    ``search.cache_gb``) before anything is computed."""

    def __init__(self, folder: str | Path | None, limit: int | None = None, *, dtype: torch.dtype = torch.float16,
                 progress: bool = False) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.limit = int(DEFAULT_LIMIT_GB * 2**30) if limit is None else limit
        self.dtype, self.progress = dtype, progress
        self.entries: OrderedDict[str, CachedData] = OrderedDict()

    def get(self, spec: DetectorSpec, train_pair: Any, val_pair: Any, cfg: Any) -> CachedData:
        """The entry of ``spec``'s backbone and resolution for the study's data (``cfg``: the trial's
        ``TrainConfig``, for its augmentation); built, read back or reused from memory."""
        from scalesearch.training.train import make_dataset

        check_augmentation(cfg.scale_range)
        if not spec.pretrained:
            raise UserError("spec.weights: the cached estimator trains on a frozen pretrained backbone, so it must "
                            "name weights (space.pretrained: true), but got 'none'")
        flips = flips_needed(cfg.flip_prob)
        key = entry_key(spec, tuple(map(Path, train_pair)), tuple(map(Path, val_pair)), flips, self.dtype)
        name = f"features-{spec.backbone}-{spec.resolution}-{digest(key)}"
        if name in self.entries:
            self.entries.move_to_end(name)
            return self.entries[name]
        train_set = make_dataset(train_pair, "train", spec, cfg, train=True)
        val_set = make_dataset(val_pair, "val", spec, cfg, train=False)
        entry = self._load_or_build(name, spec, train_set, val_set, flips, cfg.flip_prob, cfg.device)
        self._keep(name, entry)
        self._say(spec, entry)
        return entry

    # -- steps ---------------------------------------------------------------------------------
    def _load_or_build(self, name: str, spec: DetectorSpec, train_set, val_set, flips, flip_prob,
                       device: str = "cpu") -> CachedData:
        backbone = frozen_backbone(spec).to(device)
        rows = len(train_set) * len(flips) + len(val_set)
        need = rows * row_bytes(spec, backbone.feature_info.channels(), self.dtype)
        if need > self.limit:
            raise UserError(
                f"{SETTING}: the feature cache of {spec.backbone} at {spec.resolution} px needs {gib(need)} "
                f"({len(train_set)} train images x {len(flips)} flip states + {len(val_set)} val, {self.dtype}), "
                f"over the {gib(self.limit)} limit; raise it or lower the resolution")
        train_keys = [(i, seed_for(f, flip_prob)) for f in flips for i in range(len(train_set))]
        val_keys = list(range(len(val_set)))
        path = self.folder / f"{name}.pt" if self.folder is not None else None
        start, built = time.perf_counter(), False
        with exclusive(path.with_suffix(".lock")) if path is not None else contextlib.nullcontext():
            stored = self._read(path, len(train_keys), len(val_keys))
            if stored is None:
                stored = {"train": compute_levels(backbone, train_set, train_keys, self.dtype, self.progress,
                                                  "train features"),
                          "val": compute_levels(backbone, val_set, val_keys, self.dtype, self.progress, "val features")}
                built = True
                if path is not None:
                    save_atomic(stored, path)
                    stored = self._read(path, len(train_keys), len(val_keys))
        seconds = time.perf_counter() - start
        # Targets from the dataset itself (its boxes after the same flip), not from the file: the live code's.
        train = FeatureSet(stored["train"], [train_set[k][1] for k in train_keys], train_set.info, train_set.coco)
        val = FeatureSet(stored["val"], [val_set[k][1] for k in val_keys], val_set.info, val_set.coco)
        return CachedData(train, val, flips, len(train_set), need, path, built, seconds)

    @staticmethod
    def _read(path: Path | None, train_rows: int, val_rows: int) -> dict[str, list[Tensor]] | None:
        """A stored entry, memory-mapped; None when absent or not of this shape (then it is rebuilt)."""
        if path is None or not path.is_file():
            return None
        try:
            stored = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError):  # not a file torch wrote this way: rebuild it
            return None
        rows = ({len(t) for t in stored.get("train", [])}, {len(t) for t in stored.get("val", [])})
        return stored if rows == ({train_rows}, {val_rows}) else None

    def _keep(self, name: str, entry: CachedData) -> None:
        while self.entries and sum(e.bytes for e in self.entries.values()) + entry.bytes > self.limit:
            self.entries.popitem(last=False)
        self.entries[name] = entry

    def _say(self, spec: DetectorSpec, entry: CachedData) -> None:
        how = f"built in {entry.seconds:.1f} s" if entry.built else "read back"
        where = f"{entry.path}" if entry.path is not None else "memory only"
        print(f"scalesearch run: feature cache {spec.backbone} {spec.resolution} px: {entry.images} train images x "
              f"{len(entry.flips)} flip state(s) + {len(entry.val.targets)} val = {gib(entry.bytes)} {self.dtype} "
              f"(limit {gib(self.limit)}, {SETTING}), {how}: {where}", file=sys.stderr)


# ------------------------------------------------------------------------------- training on them
class TrainItems(torch.utils.data.Dataset):
    """The train split as the seeded loader sees it: key ``(i, item_seed)`` -> (row ``Tensor[]`` int64, target),
    the row holding image i in the flip state ``CocoDetection`` draws from that seed."""

    seeded_keys = True

    def __init__(self, data: CachedData, flip_prob: float) -> None:
        self.data, self.flip_prob = data, flip_prob

    def __len__(self) -> int:
        return self.data.images

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, dict[str, Any]]:
        i, seed = key
        row = self.data.flips.index(flip_of(seed, self.flip_prob)) * self.data.images + i
        return torch.tensor(row), self.data.train.targets[row]


class ValItems(torch.utils.data.Dataset):
    """The val split by plain index: i -> (row ``Tensor[]``, target); ``info`` and ``coco`` as the dataset's."""

    def __init__(self, features: FeatureSet) -> None:
        self.features, self.info, self.coco = features, features.info, features.coco

    def __len__(self) -> int:
        return len(self.features.targets)

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Any]]:
        return torch.tensor(i), self.features.targets[i]


class FeatureDetector(nn.Module):
    """A detector without its backbone: ``forward(features)`` (the backbone's maps, levels min..5) ->
    ``(cls_outputs, box_outputs)`` as ``EfficientDet.forward``. Holds the feature network and heads of
    ``build_detector(spec, init_seed=seed)``, so it starts where a live training of that spec starts."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.spec, self.fpn = detector.spec, detector.fpn
        self.class_net, self.box_net = detector.class_net, detector.box_net

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        feats = self.fpn(features)
        return self.class_net(feats), self.box_net(feats)

    def channels_last(self) -> bool:
        weight = next(p for p in self.parameters() if p.dim() == 4)
        return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


class Fed(nn.Module):
    """``model`` fed by rows of ``features``: ``forward(rows: Tensor[B])`` = ``model(features.batch(rows))``, so
    ``train.detector_loss`` and ``train.detector_predictor`` drive it as they drive a detector on images. A thin
    wrapper made per call: the features are never part of a module that EMA copies."""

    def __init__(self, model: FeatureDetector, features: FeatureSet) -> None:
        super().__init__()
        self.model, self.features = model, features

    def forward(self, rows: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        return self.model(self.features.batch(rows, self.model.channels_last()))


def training_parts(spec: DetectorSpec, data: CachedData, cfg: Any) -> tuple[DetectorSpec, FeatureDetector, Any, Any]:
    """``(spec, model, step_loss, loader)`` for ``train.train_loop``: ``spec``'s feature network and heads trained on
    ``data`` as a live training with its backbone frozen trains them. The same initial weights
    (``build_detector(spec, init_seed=cfg.seed)``, per-part streams), torch seed, seeded batches
    (``train.train_loader``; each item's seed picks its flip as ``CocoDetection`` does) and loss
    (``train.detector_loss``); ``spec`` gets the dataset's class count."""
    from scalesearch.model import build_detector
    from scalesearch.model.detector import part_seed
    from scalesearch.training import train

    spec = spec.replace(num_classes=data.train.info.num_classes)
    model = FeatureDetector(build_detector(spec, weights=False, init_seed=cfg.seed)).to(cfg.device)
    torch.manual_seed(part_seed(cfg.seed, "train"))  # as a live training: any randomness in it is the seed's
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    base_loss = train.detector_loss(spec)

    def step_loss(m: nn.Module, rows: Tensor, targets: list[dict]) -> Tensor:
        return base_loss(Fed(m, data.train), rows, targets)

    return spec, model, step_loss, train.train_loader(TrainItems(data, cfg.flip_prob), cfg)


def val_detections(model: FeatureDetector, spec: DetectorSpec, data: CachedData, cfg: Any) -> list[dict[str, Any]]:
    """COCO results of ``model`` on the val features (``train.predict_coco`` with ``train.detector_predictor``)."""
    from scalesearch.training import train

    fed = Fed(model, data.val)
    eval_cfg = dataclasses.replace(cfg, channels_last=False)  # rows are not images; ``Fed`` lays out the maps
    return train.predict_coco(train.detector_predictor(fed, spec, cfg.max_detections), fed, ValItems(data.val),
                              eval_cfg)
