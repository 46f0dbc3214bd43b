"""``train``: proxy training, the default estimator. Each trial trains the whole detector for the study's
``train`` budget (``scalesearch.training.train.train_and_evaluate``) and COCO-evaluates it, reporting the mAP every
``train.eval_every`` steps (so pruning can stop it)."""

from __future__ import annotations

import dataclasses
from typing import Any

from scalesearch.search.estimators import Capabilities, Estimate, EstimateFailed, Estimator, OnEval


class TrainEstimator(Estimator):
    """Per-study state: the train and val (images, annotations) pairs; nothing is shared between trials."""

    capabilities = Capabilities(intermediate=True, prefilter=True)

    def prepare(self) -> None:
        self.train_data, self.val_data = self.study.data.train, self.study.data.val

    def estimate(self, spec: Any, seed: int, *, threads: int | None = None, on_eval: OnEval | None = None) -> Estimate:
        from scalesearch.training import train
        cfg = self.study.config.trial_train_config(seed)
        if threads:
            cfg = dataclasses.replace(cfg, threads=threads)
        try:
            result = train.train_and_evaluate(spec, self.train_data, self.val_data, cfg, on_eval=on_eval,
                                              progress=self.study.progress)
        except train.TrainingFailed as exc:
            raise EstimateFailed(f"training failed: {exc.reason}") from None
        curve = {step: found.get("map") for step, found in result.intermediate.items()}
        return Estimate(metrics=dict(result.metrics), steps=result.steps, curve=curve, train_seconds=result.train_seconds,
                        eval_seconds=result.eval_seconds, images_per_second=result.images_per_second)
