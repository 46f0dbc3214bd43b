"""Proxy training: train a spec for a short budget (steps or seconds), then COCO-evaluate it.

``train_and_evaluate`` is what a search calls for every trial. The pieces it is made of
(``train_loop``, ``predict_coco``, ``lr_factor``) are public so that a benchmark can drive another
implementation (effdet) through the very same loop, data and recipe.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn

from scalesearch.training import detection as det
from scalesearch.spec import DetectorSpec
from scalesearch.training.train_config import OPTIMIZERS, TrainConfig

__all__ = ["OPTIMIZERS", "TrainConfig", "TrainingFailed", "TrainResult", "train_and_evaluate"]

class TrainingFailed(RuntimeError):
    """Training produced no usable model (non-finite loss or gradients); ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TrainResult:
    """Outcome of one proxy training run. ``metrics``: ``coco_evaluate`` keys (map, map50, ...) of the scored
    weights (``cfg.scored``), plus ``map_raw`` and ``map_ema`` (the raw and averaged weights' mAP; ``map_ema``
    only with ``cfg.ema``) and ``train_loss`` (``train_loss_score``); ``weights_metrics``: every metric per
    weights (``raw``, ``ema``); ``intermediate``: step -> metrics of the scored weights at ``train.eval_every``
    steps and at the learning-curve steps (``curve_steps``)."""

    metrics: dict[str, float]
    steps: int
    train_seconds: float
    eval_seconds: float
    images_per_second: float
    losses: list[float] = field(default_factory=list, repr=False)
    intermediate: dict[int, dict[str, float]] = field(default_factory=dict)
    spec: DetectorSpec | None = None
    detections: list[dict[str, Any]] = field(default_factory=list, repr=False)
    info: Any = field(default=None, repr=False)  # the dataset's DatasetInfo (class names, category ids)
    model: nn.Module | None = field(default=None, repr=False)
    weights_metrics: dict[str, dict[str, float]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ recipe
def lr_factor(step: int, progress: float, warmup_steps: int) -> float:
    """Multiplier of the peak lr: linear warm-up over ``warmup_steps``, cosine to 0 as ``progress`` goes 0 -> 1."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return warm * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def backbone_of(model: nn.Module) -> nn.Module | None:
    """The ``backbone`` submodule of a detector, or of the detector a training wrapper holds as ``.model``
    (effdet's ``DetBenchTrain``); None when there is none."""
    for holder in (model, getattr(model, "model", None)):
        if isinstance(getattr(holder, "backbone", None), nn.Module):
            return holder.backbone
    return None


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum) via timm; no weight decay on norms and biases.

    With ``backbone_lr_mult != 1`` the backbone's groups carry ``lr_mult`` (``_set_lr`` applies it).
    Frozen parameters (``requires_grad`` off) are left out.
    """
    from timm.optim import create_optimizer_v2, param_groups_weight_decay

    opt = "adamw" if cfg.optimizer == "adamw" else "nesterov"
    extra = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
    backbone = backbone_of(model)
    if cfg.backbone_lr_mult == 1.0 or backbone is None:
        return create_optimizer_v2(model, opt=opt, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)
    inside = {id(p) for p in backbone.parameters()}
    rest = nn.ParameterList([p for p in model.parameters() if id(p) not in inside])
    groups = param_groups_weight_decay(rest, cfg.weight_decay)
    for group in param_groups_weight_decay(backbone, cfg.weight_decay):
        groups.append({**group, "lr_mult": cfg.backbone_lr_mult})
    groups = [g for g in groups if any(p.requires_grad for p in g["params"])]
    return create_optimizer_v2(groups, opt=opt, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)


def freeze_batch_norm(module: nn.Module) -> None:
    """Fix every BatchNorm of ``module``: statistics (eval mode) and affine weights (no gradient).

    Call after each ``model.train()``; the layers stay BatchNorm, so checkpoints keep their layout.
    """
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            m.requires_grad_(False)


def _forever(loader: torch.utils.data.DataLoader) -> Iterator[tuple[Tensor, list[dict]]]:
    for _ in itertools.count():  # each pass draws a fresh order from the seeded sampler
        yield from loader


@dataclass
class LoopResult:
    steps: int
    seconds: float
    eval_seconds: float
    losses: list[float]
    intermediate: dict[int, dict[str, float]]
    models: dict[str, nn.Module] = field(default_factory=dict)  # "raw" and, with cfg.ema, "ema"


def train_loop(
    model: nn.Module,
    step_loss: Callable[[nn.Module, Tensor, list[dict]], Tensor],
    loader: torch.utils.data.DataLoader,
    cfg: TrainConfig,
    *,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> tuple[LoopResult, nn.Module]:
    """Optimise ``step_loss(model, images, targets)`` within the budget; returns the result and the scored model
    (``cfg.scored``: the EMA of the weights or the raw weights; both are in ``result.models``).

    The clock covers data loading, optimisation and the EMA update, not intermediate evaluations (which score
    the scored weights). ``on_eval`` may raise (a search's pruning exception propagates unchanged).
    """
    from tqdm import tqdm

    frozen = backbone_of(model) if cfg.freeze_backbone_bn else None
    if frozen is not None:
        freeze_batch_norm(frozen)
    opt = make_optimizer(model, cfg)
    ema = _make_ema(model, cfg)
    losses: list[float] = []
    intermediate: dict[int, dict[str, float]] = {}
    curve = curve_steps(cfg)
    bar = tqdm(total=cfg.steps, disable=not progress, desc="train", unit="step", leave=False)
    train_s = eval_s = 0.0
    start = time.perf_counter()
    batches = _forever(loader)
    step = 0
    try:
        while not _spent(cfg, step, train_s):
            _set_lr(opt, cfg, step, train_s)
            images, targets = next(batches)
            losses.append(_step(model, step_loss, opt, images.to(cfg.device), targets, cfg, step, frozen))
            step += 1
            if ema is not None:
                ema.update(model, step=step)
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            train_s = time.perf_counter() - start - eval_s
            reported = bool(cfg.eval_every) and step % cfg.eval_every == 0
            if evaluate and (reported or step in curve) and not _spent(cfg, step, train_s):
                eval_start = time.perf_counter()
                intermediate[step] = evaluate(_scored(model, ema, cfg))
                eval_s += time.perf_counter() - eval_start
                if on_eval is not None and reported:
                    on_eval(step, intermediate[step])
    finally:
        bar.close()
    models = {"raw": model, **({"ema": ema.module} if ema is not None else {})}
    result = LoopResult(step, train_s, eval_s, losses, intermediate, models)
    return result, _scored(model, ema, cfg)


def _scored(model: nn.Module, ema: Any, cfg: TrainConfig) -> nn.Module:
    return ema.module if ema is not None and cfg.scored == "ema" else model


def scored_weights(loop: LoopResult, cfg: TrainConfig) -> str:
    """Which of ``loop.models`` is the training's result: ``cfg.scored`` when the loop kept an EMA, else raw."""
    return cfg.scored if "ema" in loop.models else "raw"


def score_weights(loop: LoopResult, cfg: TrainConfig, evaluate: Callable[[str, nn.Module], dict[str, float]]
                  ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Evaluate every weights the loop kept (``evaluate(name, model)``, the scored ones last) -> (the training's
    metrics: the scored weights' COCO keys, ``map_<name>`` of each and ``train_loss``; the metrics per weights)."""
    scored = scored_weights(loop, cfg)
    weights_metrics = {name: evaluate(name, loop.models[name]) for name in sorted(loop.models, key=lambda n: n == scored)}
    metrics = {**weights_metrics[scored], **{f"map_{name}": m["map"] for name, m in sorted(weights_metrics.items())},
               "train_loss": train_loss_score(loop.losses)}
    return metrics, weights_metrics


def curve_steps(cfg: TrainConfig) -> set[int]:
    """The steps of ``cfg.curve`` (fractions of a step budget; none for a seconds-only budget), final step excluded."""
    if cfg.steps is None:
        return set()
    return {s for s in (round(f * cfg.steps) for f in cfg.curve) if 0 < s < cfg.steps}


def train_loss_score(losses: list[float]) -> float | None:
    """Mean training loss over the last half of the run (at least one step): the sum-of-training-losses score of
    Ru et al. 2021, free with every training; lower is better."""
    if not losses:
        return None
    tail = losses[len(losses) // 2:]
    return sum(tail) / len(tail)


def _set_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, step: int, seconds: float) -> None:
    """Schedule by the larger of the step and time fractions used, so a seconds budget also ends at lr 0."""
    progress = max(step / cfg.steps if cfg.steps else 0.0, seconds / cfg.seconds if cfg.seconds else 0.0)
    for group in opt.param_groups:
        group["lr"] = cfg.lr * group.get("lr_mult", 1.0) * lr_factor(step, progress, cfg.warmup_steps)


def _spent(cfg: TrainConfig, step: int, seconds: float) -> bool:
    return (cfg.steps is not None and step >= cfg.steps) or (cfg.seconds is not None and seconds >= cfg.seconds)


def _make_ema(model: nn.Module, cfg: TrainConfig) -> Any:
    if not cfg.ema:
        return None
    from timm.utils import ModelEmaV3

    # Warm-up: decay_t = 1 - (1 + t)^(-2/3) (timm's default power), capped at ema_decay: 0.965 at step 150 and
    # 0.986 at 600, so the average spans the last ~30-70 steps. A fixed 0.9998 would keep ~97% of the weight on
    # the untrained initial head after 150 steps.
    return ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True)


def _step(model, step_loss, opt, images: Tensor, targets: list[dict], cfg: TrainConfig, step: int,
          frozen: nn.Module | None = None) -> float:
    model.train()
    if frozen is not None:
        freeze_batch_norm(frozen)
    if cfg.channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    loss = step_loss(model, images, targets)
    if not torch.isfinite(loss):
        raise TrainingFailed(f"loss became {loss.item()} at step {step + 1} (lr {opt.param_groups[0]['lr']:.3g})")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip_grad:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        if not torch.isfinite(norm):
            raise TrainingFailed(f"gradient norm became {norm.item()} at step {step + 1}")
    opt.step()
    return float(loss.detach())


# ----------------------------------------------------------------------------------- our detector
def detector_loss(spec: DetectorSpec) -> Callable[[nn.Module, Tensor, list[dict]], Tensor]:
    """``step_loss`` of a scalesearch detector: batched target assignment + focal/Huber loss."""

    def step_loss(model: nn.Module, images: Tensor, targets: list[dict]) -> Tensor:
        boxes, labels = det.pad_ground_truth(
            [t["boxes"].to(images.device) for t in targets], [t["labels"].to(images.device) for t in targets]
        )
        assigned = det.assign_targets(spec, boxes, labels)
        cls, box = det.flatten_outputs(*model(images), spec.num_classes)
        return det.detection_loss(cls, box, assigned)[0]

    return step_loss


def detector_predictor(model: nn.Module, spec: DetectorSpec, max_detections: int) -> Callable[[Tensor], list[dict]]:
    """``predict(images) -> [dict(boxes xyxy input px, scores, labels)]`` for a scalesearch detector."""
    anchors = det.anchor_boxes(spec, next(model.parameters()).device)

    def predict(images: Tensor) -> list[dict[str, Tensor]]:
        cls, box = det.flatten_outputs(*model(images), spec.num_classes)
        return det.postprocess(cls, box, anchors, image_size=spec.resolution, max_detections=max_detections)

    return predict


# ------------------------------------------------------------------------------------- evaluation
def predict_coco(
    predict: Callable[[Tensor], list[dict[str, Tensor]]], model: nn.Module, dataset, cfg: TrainConfig
) -> list[dict[str, Any]]:
    """COCO results for every image of ``dataset``: original pixels ``[x, y, w, h]`` and the dataset's category ids."""
    from scalesearch.data import make_loader

    loader = make_loader(dataset, cfg.eval_batch_size, shuffle=False, num_workers=cfg.num_workers, seed=cfg.seed)
    to_category = torch.tensor(dataset.info.label_to_category)
    out: list[dict[str, Any]] = []
    model.eval()
    with torch.inference_mode():
        for images, targets in loader:
            if cfg.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            for found, target in zip(predict(images.to(cfg.device)), targets):
                out.extend(_coco_records(found, target, to_category))
    return out


def _coco_records(found: dict[str, Tensor], target: dict[str, Any], to_category: Tensor) -> list[dict[str, Any]]:
    """One image's detections -> COCO dicts: undo the resize, clip to the original image, xyxy -> xywh."""
    height, width = target["orig_size"]
    boxes = found["boxes"].cpu() / target["scale"]
    boxes = torch.minimum(boxes.clamp(min=0), torch.tensor([width, height, width, height], dtype=boxes.dtype))
    boxes[:, 2:] -= boxes[:, :2]
    categories = to_category[found["labels"].cpu()].tolist()
    return [
        {"image_id": target["image_id"], "category_id": c, "bbox": b, "score": s}
        for c, b, s in zip(categories, boxes.tolist(), found["scores"].cpu().tolist())
    ]


# ------------------------------------------------------------------------------------- entry point
def train_loader(dataset, cfg: TrainConfig) -> torch.utils.data.DataLoader:
    """Shuffled, seeded batches; full batches only, unless the dataset is smaller than one batch."""
    from scalesearch.data import make_loader

    drop_last = len(dataset) >= cfg.batch_size
    return make_loader(dataset, cfg.batch_size, True, cfg.num_workers, cfg.seed, drop_last=drop_last)


def make_dataset(data: Any, split: str, spec: DetectorSpec, cfg: TrainConfig, train: bool):
    """A ``CocoDetection`` at ``spec``'s resolution and input normalisation from a dataset (returned as is),
    a folder/JSON path, a pair, or None (synthetic)."""
    from scalesearch.data import CocoDetection, resolve_dataset
    from scalesearch.model import input_normalization

    if isinstance(data, torch.utils.data.Dataset):
        return data
    images_dir, ann_file = resolve_dataset(data, split)
    return CocoDetection(
        images_dir, ann_file, spec.resolution, train, scale_range=cfg.scale_range, flip_prob=cfg.flip_prob,
        seed=cfg.seed, normalization=input_normalization(spec),
    )


def train_and_evaluate(
    spec: DetectorSpec,
    train_data: Any,
    val_data: Any,
    cfg: TrainConfig,
    *,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
    results_json: str | Path | None = None,
    keep_model: bool = False,
) -> TrainResult:
    """Train ``spec`` (backbone from ``spec.weights``) on ``train_data`` within ``cfg``'s budget, then COCO-evaluate on ``val_data``.

    The dataset decides the number of classes (``spec.num_classes`` is replaced by it; the result's
    ``spec`` is the one trained). Raises ``TrainingFailed`` on a non-finite loss; exceptions from
    ``on_eval`` propagate. ``keep_model`` returns the evaluated model (EMA weights when ``cfg.ema``).
    """
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train_and_evaluate(spec, train_data, val_data, cfg, on_eval, progress, results_json, keep_model)
    finally:
        torch.set_num_threads(threads)


def _train_and_evaluate(spec, train_data, val_data, cfg, on_eval, progress, results_json, keep_model) -> TrainResult:
    from scalesearch.training.evaluate import coco_evaluate
    from scalesearch.model import build_detector
    from scalesearch.model.detector import part_seed

    train_set = make_dataset(train_data, "train", spec, cfg, train=True)
    val_set = make_dataset(val_data, "val", spec, cfg, train=False)
    spec = spec.replace(num_classes=train_set.info.num_classes)
    if not spec.pretrained:  # the fine-tuning recipe has nothing to fine-tune from scratch
        cfg = dataclasses.replace(cfg, backbone_lr_mult=1.0, freeze_backbone_bn=False)
    model = build_detector(spec, init_seed=cfg.seed).to(cfg.device)  # paired seeds: per-part init streams
    torch.manual_seed(part_seed(cfg.seed, "train"))  # any randomness in training itself: a function of the seed
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)

    def detect(m: nn.Module) -> list[dict[str, Any]]:
        return predict_coco(detector_predictor(m, spec, cfg.max_detections), m, val_set, cfg)

    loop, final = train_loop(
        model, detector_loss(spec), train_loader(train_set, cfg), cfg,
        evaluate=lambda m: coco_evaluate(val_set.coco, detect(m)), on_eval=on_eval, progress=progress,
    )
    eval_start = time.perf_counter()
    found: dict[str, list[dict[str, Any]]] = {}

    def evaluate(name: str, m: nn.Module) -> dict[str, float]:
        found[name] = detect(m)
        return coco_evaluate(val_set.coco, found[name], results_json if m is final else None)

    metrics, weights_metrics = score_weights(loop, cfg, evaluate)
    detections = found[scored_weights(loop, cfg)]
    eval_seconds = loop.eval_seconds + time.perf_counter() - eval_start
    return TrainResult(
        metrics=metrics,
        steps=loop.steps,
        train_seconds=loop.seconds,
        eval_seconds=eval_seconds,
        images_per_second=loop.steps * cfg.batch_size / max(loop.seconds, 1e-9),
        losses=loop.losses,
        intermediate=loop.intermediate,
        spec=spec,
        detections=detections,
        info=train_set.info,
        model=final if keep_model else None,
        weights_metrics=weights_metrics,
    )
