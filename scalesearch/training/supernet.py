"""Training a ``Supernet`` (``scalesearch.model.supernet``) on cached backbone features by the sandwich rule, with
in-place distillation, resumable from checkpoints; and scoring one of its sub-networks.

One step (``step_plan``, a function of (seed, step) only, so a resumed training draws what an unbroken one draws):
a resolution r and a batch of (train image, flip) rows of r's feature-cache entry; the shared choices (fusion,
activation) of the step; the children: the largest sub-network (every elastic dimension at its maximum), the
smallest, and ``random_children`` uniformly drawn ones, all at r. Each child's loss is the detection loss
(``detection.detection_loss``: focal + Huber against the ground truth); every child but the largest adds
``distill_weight`` x the in-place distillation term ``distill_loss``: the Bernoulli KL divergence from the largest
child's class probabilities (detached, computed first in the same step) to the child's, summed over anchors and
classes and divided by (positives + 1) as the focal loss is (box outputs are not distilled). The children's
gradients add up (one backward each, so one graph is alive at a time), then one clipped optimiser step with the
recipe of ``train`` (AdamW, warm-up + cosine, ``train.clip_grad``) and an EMA of the weights (``train.ema``).

Checkpoints (``checkpoint_every`` steps and at the end) hold the weights, the optimiser, the EMA, the step and the
seconds spent; they are written to a temp file and moved over ``supernet.pt``, so a SIGKILL loses at most the
steps since the last one and a rerun continues from it with the same result. A finished training also writes
``supernet_final.pt``: the key, the cost and the weights that are scored (the EMA's, or the raw ones), nothing to
resume from. It is a few MB (the backbone is not in it), so a run folder can keep it under version control: a new
checkout of the run then scores its sub-networks with the same weights instead of training another supernet (the
same mAPs where the floating point is the same: the feature cache is rebuilt there).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scalesearch.model.supernet import ElasticSpace, Supernet, recalibrate
from scalesearch.training import detection as det

CHECKPOINT = "supernet.pt"
FINAL = "supernet_final.pt"
FORMAT = 1


@dataclass(frozen=True)
class SandwichConfig:
    """``steps`` sandwich steps; ``random_children`` random sub-networks per step beside the largest and the smallest;
    ``distill_weight`` of ``distill_loss``; a checkpoint every ``checkpoint_every`` steps."""

    steps: int
    random_children: int = 2
    distill_weight: float = 1.0
    checkpoint_every: int = 50


@dataclass
class SupernetTraining:
    """A trained (or partly trained) supernet: ``model`` the weights to score (the EMA with ``train.ema`` and
    ``train.scored: ema``, else the raw weights), ``steps`` done, ``seconds`` and ``cpu_seconds`` of training over
    all runs that made it, ``losses`` per step (the sum over the step's children), ``resumed_from`` the step this
    run started at; ``loaded_final``: nothing was trained, the weights came from ``FINAL``, and ``machine`` is the
    machine that trained them (``machine.identity()``, as the file holds it; None when trained here)."""

    model: Supernet
    steps: int
    seconds: float
    cpu_seconds: float
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    scored: str = "raw"
    loaded_final: bool = False
    machine: dict[str, Any] | None = None


@dataclass(frozen=True)
class StepPlan:
    resolution: int
    items: list[tuple[int, bool]]  # (train image, flipped)
    children: list[dict[str, Any]]  # the largest first


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The random stream of one step: a function of (seed, step) only."""
    return np.random.default_rng([zlib.crc32(b"supernet"), seed, step])


def step_plan(space: ElasticSpace, how: SandwichConfig, seed: int, step: int, images: int, batch: int,
              flip_prob: float) -> StepPlan:
    """What step ``step`` trains on (see the module docstring)."""
    rng = step_rng(seed, step)
    resolution = space.resolution[int(rng.integers(len(space.resolution)))]
    chosen = rng.choice(images, size=min(batch, images), replace=False)
    flips = rng.random(len(chosen)) < flip_prob
    shared = {"fusion": space.fusion[int(rng.integers(len(space.fusion)))],
              "activation": space.activation[int(rng.integers(len(space.activation)))], "resolution": resolution}
    children = [space.largest(**shared), space.smallest(**shared)]
    children += [space.sample(rng, resolution=resolution) for _ in range(how.random_children)]
    return StepPlan(resolution, [(int(i), bool(f)) for i, f in zip(chosen, flips)], children)


def rows_of(data: Any, items: list[tuple[int, bool]]) -> Tensor:
    """Rows of a feature-cache entry (``feature_cache.CachedData``) for (image, flipped) items; a flip the entry did
    not store (``train.flip_prob`` 0 or 1) falls back to the stored state."""
    def state(flipped: bool) -> int:
        return data.flips.index(flipped) if flipped in data.flips else 0

    return torch.tensor([state(f) * data.images + i for i, f in items], dtype=torch.long)


def distill_loss(student: Tensor, teacher: Tensor, normalizer: Tensor) -> Tensor:
    """Bernoulli KL(teacher || student) of sigmoid class probabilities, ``[B, N, C]`` logits each (``teacher``
    detached by the caller), summed and divided by ``normalizer`` (positives + 1); 0 when they agree."""
    t_pos, t_neg = F.logsigmoid(teacher), F.logsigmoid(-teacher)
    s_pos, s_neg = F.logsigmoid(student.float()), F.logsigmoid(-student.float())
    p = t_pos.exp()
    kl = p * (t_pos - s_pos) + (1 - p) * (t_neg - s_neg)
    return kl.sum() / normalizer


def sandwich_step(supernet: Supernet, plan: StepPlan, data: Any, base_spec: Any, how: SandwichConfig,
                  channels_last: bool = False) -> float:
    """Forward and backward every child of ``plan`` on its batch (gradients accumulate in ``supernet``); the summed
    loss. ``data``: the feature-cache entry at ``plan.resolution``; ``base_spec``: any spec of the supernet at that
    resolution (anchors and classes for the targets)."""
    rows = rows_of(data, plan.items)
    features = data.train.batch(rows, channels_last)
    targets = [data.train.targets[int(r)] for r in rows]
    boxes, labels = det.pad_ground_truth([t["boxes"] for t in targets], [t["labels"] for t in targets])
    assigned = det.assign_targets(base_spec.replace(resolution=plan.resolution), boxes, labels)
    normalizer = assigned.num_positives.sum().float() + 1.0
    num_classes = base_spec.num_classes
    total, teacher = 0.0, None
    for k, choice in enumerate(plan.children):
        cls, box = det.flatten_outputs(*supernet.run(choice, features), num_classes)
        loss = det.detection_loss(cls, box, assigned)[0]
        if k == 0:
            teacher = cls.detach().float()
        elif how.distill_weight:
            loss = loss + how.distill_weight * distill_loss(cls, teacher, normalizer)
        if not torch.isfinite(loss):
            from scalesearch.training.train import TrainingFailed

            raise TrainingFailed(f"supernet loss became {loss.item()} (child {choice})")
        loss.backward()
        total += float(loss.detach())
    return total


def train_supernet(supernet: Supernet, data: dict[int, Any], cfg: Any, how: SandwichConfig, *,
                   folder: Path | None = None, progress: bool = False, stop_after: int | None = None,
                   key: str = "") -> SupernetTraining:
    """Train ``supernet`` on ``data`` (resolution -> ``feature_cache.CachedData``, every resolution of its space)
    with ``cfg``'s recipe (a ``TrainConfig``: lr, warm-up, optimiser, clipping, EMA, batch size, flips, seed, threads)
    for ``how.steps`` sandwich steps; with ``folder``, resumes from and writes ``folder/supernet.pt`` (a checkpoint
    of another ``key``, e.g. other settings, is not resumed: it is replaced). ``stop_after``: return after that many
    steps of this call (tests interrupt a training with it). A ``folder/supernet_final.pt`` of this ``key`` and
    ``how.steps`` (``FINAL``) is a finished training: its weights are loaded and nothing is trained."""
    from tqdm import tqdm

    from scalesearch.training.train import TrainingFailed, _make_ema, lr_factor, make_optimizer

    if cfg.channels_last:
        supernet = supernet.to(memory_format=torch.channels_last)
    final = Path(folder) / FINAL if folder is not None else None
    loaded = _load_final(final, key, how.steps, supernet)
    if loaded is not None:
        return loaded
    opt = make_optimizer(supernet, cfg)
    ema = _make_ema(supernet, cfg)
    step, seconds, cpu_seconds, losses = 0, 0.0, 0.0, []
    path = Path(folder) / CHECKPOINT if folder is not None else None
    saved = load_checkpoint(path, key)
    if saved is not None:
        supernet.load_state_dict(saved["weights"])
        opt.load_state_dict(saved["optimizer"])
        if ema is not None and saved.get("ema") is not None:
            ema.module.load_state_dict(saved["ema"])
        step, seconds, cpu_seconds, losses = saved["step"], saved["seconds"], saved["cpu_seconds"], saved["losses"]
    resumed_from = step
    images = next(iter(data.values())).images
    base = supernet.spec(supernet.space.largest())
    params = [p for p in supernet.parameters() if p.requires_grad]
    bar = tqdm(total=how.steps, initial=step, disable=not progress, desc="supernet", unit="step", leave=False)
    done_here = 0
    try:
        while step < how.steps and (stop_after is None or done_here < stop_after):
            wall, cpu = time.perf_counter(), time.process_time()
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, step / how.steps, cfg.warmup_steps)
            plan = step_plan(supernet.space, how, cfg.seed, step, images, cfg.batch_size, cfg.flip_prob)
            supernet.train()
            opt.zero_grad(set_to_none=True)
            losses.append(sandwich_step(supernet, plan, data[plan.resolution], base, how, cfg.channels_last))
            if cfg.clip_grad:
                norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
                if not torch.isfinite(norm):
                    raise TrainingFailed(f"supernet gradient norm became {norm.item()} at step {step + 1}")
            opt.step()
            step += 1
            done_here += 1
            if ema is not None:
                ema.update(supernet, step=step)
            seconds += time.perf_counter() - wall
            cpu_seconds += time.process_time() - cpu
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            if path is not None and (step % how.checkpoint_every == 0 or step == how.steps):
                save_checkpoint(path, key, supernet, opt, ema, step, seconds, cpu_seconds, losses)
    finally:
        bar.close()
    scored = "ema" if ema is not None and cfg.scored == "ema" else "raw"
    model = ema.module if scored == "ema" else supernet
    if final is not None and step == how.steps:
        save_final(final, key, model, step, seconds, cpu_seconds, losses, scored)
    return SupernetTraining(model.eval(), step, seconds, cpu_seconds, losses, resumed_from, scored)


def save_checkpoint(path: Path, key: str, supernet: Supernet, opt: Any, ema: Any, step: int, seconds: float,
                    cpu_seconds: float, losses: list[float]) -> None:
    """Everything a resumed training needs, written atomically (temp file, then ``os.replace``)."""
    from scalesearch.training.feature_cache import save_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"format": FORMAT, "key": key, "step": step, "seconds": seconds, "cpu_seconds": cpu_seconds,
                 "losses": list(losses), "weights": supernet.state_dict(), "optimizer": opt.state_dict(),
                 "ema": ema.module.state_dict() if ema is not None else None}, path)


def save_final(path: Path, key: str, model: Supernet, step: int, seconds: float, cpu_seconds: float,
               losses: list[float], scored: str) -> None:
    """A finished training's ``FINAL`` file, written atomically: the weights that are scored (stored contiguous),
    what they cost and the machine that trained them (``machine.identity()``: no host name, no path). Plain
    tensors, numbers and strings only, so it loads with ``weights_only=True`` (no pickle code runs)."""
    from scalesearch.machine import identity
    from scalesearch.training.feature_cache import save_atomic

    weights = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_atomic({"format": FORMAT, "key": key, "step": step, "seconds": seconds, "cpu_seconds": cpu_seconds,
                 "losses": [float(x) for x in losses], "scored": scored,
                 "machine": json.loads(json.dumps(identity(), default=str)),  # plain str, not torch's TorchVersion
                 "weights": weights}, path)


def _load_final(path: Path | None, key: str, steps: int, supernet: Supernet) -> SupernetTraining | None:
    """``supernet`` holding the ``FINAL`` file's weights when the file is of this format, ``key`` and ``steps``;
    None otherwise (then it is trained). The file is under version control, so anything may be in it: it is read
    with ``weights_only=True``, and one that does not load (a Git LFS pointer, a conflicted merge, weights of
    another shape) is reported in one line and trained over."""
    if path is None or not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("key") != key \
                or saved.get("step") != steps:
            return None
        supernet.load_state_dict(saved["weights"])
    except Exception as exc:  # noqa: BLE001 - any unreadable file means: train instead
        print(f"scalesearch: supernet weights {path} not loaded ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); "
              "training the supernet", file=sys.stderr)
        return None
    return SupernetTraining(supernet.eval(), saved["step"], saved["seconds"], saved["cpu_seconds"],
                            list(saved["losses"]), saved["step"], saved["scored"], loaded_final=True,
                            machine=saved.get("machine"))


def load_checkpoint(path: Path | None, key: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it is of this format and ``key``; None otherwise (a fresh start)."""
    if path is None or not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        print(f"scalesearch: supernet checkpoint {path} unreadable ({exc}); training from the start", file=sys.stderr)
        return None
    if saved.get("format") != FORMAT or saved.get("key") != key:
        return None
    return saved


# ------------------------------------------------------------------------------------------ scoring
def calibration_rows(data: Any, count: int, seed: int) -> list[Tensor]:
    """Batches of up to 8 train rows (unflipped images, a seeded choice of ``count``) for ``recalibrate``."""
    rng = np.random.default_rng([zlib.crc32(b"calibrate"), seed])
    chosen = rng.permutation(data.images)[:min(count, data.images)]
    rows = rows_of(data, [(int(i), False) for i in chosen])
    return [rows[i:i + 8] for i in range(0, len(rows), 8)]


def score_subnetwork(supernet: Supernet, choice: dict[str, Any], data: Any, cfg: Any, *, calib_images: int,
                     seed: int = 0) -> tuple[dict[str, float], dict[str, float]]:
    """Extract ``choice``, re-estimate its batch-norm statistics on ``calib_images`` train images of ``data`` (the
    entry at its resolution), COCO-evaluate it on ``data``'s val features: (metrics, seconds per phase)."""
    from scalesearch.training import feature_cache as fc
    from scalesearch.training.evaluate import coco_evaluate

    times = {}
    start = time.perf_counter()
    sub = supernet.extract(choice)
    batches = calibration_rows(data, calib_images, seed)
    recalibrate(sub, (data.train.batch(rows) for rows in batches))
    times["recalibrate"] = time.perf_counter() - start
    start = time.perf_counter()
    eval_cfg = dataclasses.replace(cfg, channels_last=False)
    metrics = coco_evaluate(data.val.coco, fc.val_detections(sub, sub.spec, data, eval_cfg))
    times["evaluate"] = time.perf_counter() - start
    return metrics, times


__all__ = ["SandwichConfig", "SupernetTraining", "distill_loss", "sandwich_step", "score_subnetwork", "step_plan",
           "train_supernet"]
