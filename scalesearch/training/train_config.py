"""``TrainConfig``: the proxy-training recipe, plain data (torch-free, so a study validates it at the edge
without importing the model). ``scalesearch.training.train`` runs it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalesearch.errors import UserError

OPTIMIZERS = ("adamw", "sgd")
SCORED = ("ema", "raw")


@dataclass(frozen=True)
class TrainConfig:
    """Proxy-training recipe. A budget is ``steps`` and/or ``seconds`` (training stops at whichever comes first).

    lr: peak learning rate after ``warmup_steps`` linear warm-up, then cosine decay to 0 over the budget.
    scale_range / flip_prob: train-time scale jitter and horizontal flip (EfficientDet's augmentation).
    eval_every: steps between intermediate evaluations (each calls ``on_eval``); None = final only.
    curve: budget fractions (of ``steps``) at which the scored weights are also evaluated, for the learning curve
    (recorded with the intermediate evaluations; ``on_eval`` is not called there, so pruning is unchanged).
    """

    steps: int | None = 300
    seconds: float | None = None
    batch_size: int = 8
    lr: float = 1e-2  # from scratch, short budgets: 1e-2 beat 6e-3 and 2e-3 on the quickstart run (AP50 .93/.85/.34)
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_steps: int = 30
    clip_grad: float | None = 10.0
    # Weight averaging: an EMA of the weights (timm ModelEmaV3 with warm-up: decay 1 - (1 + step)^(-2/3), capped at
    # ema_decay) is evaluated beside the raw weights at the end of every training; ``scored`` names the one whose
    # metrics are the training's ``map`` (both are recorded as map_raw / map_ema); with ema off, the raw weights.
    ema: bool = True
    ema_decay: float = 0.999
    scored: str = "ema"
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    eval_every: int | None = None
    curve: tuple[float, ...] = (0.25, 0.5, 0.75)  # learning curve: val mAP of the scored weights at these budget fractions
    eval_batch_size: int = 8
    max_detections: int = 100
    scale_range: tuple[float, float] = (1.0, 1.0)
    flip_prob: float = 0.5
    channels_last: bool = True  # NHWC: 1.6x faster D0 training steps on this CPU (oneDNN depthwise convs)
    threads: int | None = None  # torch CPU threads while training (None: leave torch's setting)
    # Fine-tuning a pretrained backbone (ignored from scratch); defaults measured in benchmarks/bench_pretrained.py.
    backbone_lr_mult: float = 1.0  # the backbone's lr = lr * this
    freeze_backbone_bn: bool = False  # keep the backbone's BatchNorm statistics and affine weights as loaded

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise UserError("train: a budget is needed, but both steps and seconds are None")
        for key in ("steps", "eval_every"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"train.{key}: must be a positive integer or None, but got {value!r}")
        for key in ("batch_size", "eval_batch_size", "max_detections"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise UserError(f"train.{key}: must be a positive integer, but got {getattr(self, key)!r}")
        if self.seconds is not None and not self.seconds > 0:
            raise UserError(f"train.seconds: must be > 0, but got {self.seconds!r}")
        for key in ("lr", "backbone_lr_mult"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise UserError(f"train.{key}: must be a finite number > 0, but got {value!r}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"train.optimizer: must be one of {', '.join(OPTIMIZERS)}, but got {self.optimizer!r}")
        if self.scored not in SCORED:
            raise UserError(f"train.scored: must be one of {', '.join(SCORED)}, but got {self.scored!r}")
        if not 0 < self.ema_decay < 1:
            raise UserError(f"train.ema_decay: must be in (0, 1), but got {self.ema_decay!r}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise UserError(f"train.scale_range: 0 < low <= high must hold, but got {tuple(self.scale_range)}")
        object.__setattr__(self, "scale_range", tuple(float(s) for s in self.scale_range))
        if any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1 for f in self.curve):
            raise UserError(f"train.curve: budget fractions must lie strictly between 0 and 1, but got {self.curve!r}")
        object.__setattr__(self, "curve", tuple(sorted(float(f) for f in self.curve)))
