"""``cached``: proxy training on a frozen pretrained backbone's cached features. For studies that fix a pretrained
backbone (``space.pretrained: true``) and vary the feature network, heads and resolution: the backbone's maps of
every (train image, flip) and val image are computed once per resolution (``scalesearch.training.feature_cache``,
on disk under the run's estimator folder, shared by workers and reruns) and each trial trains only the feature
network and heads on them, with the loss, recipe, seeded batches, initial weights and COCO evaluation (raw and EMA
weights) of ``train``. What differs from ``train``: the backbone is not fine-tuned (its BatchNorm statistics and
weights stay as loaded), and scale jitter is refused (``train.scale_range`` must be [1, 1]).

Capabilities: intermediate mAP every ``train.eval_every`` steps (pruning works); no prefilter (a trial is cheap).
Memory: an entry above ``search.cache_gb`` (default 4 GiB) is refused in one line before it is computed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from scalesearch.errors import UserError
from scalesearch.search.estimators import Capabilities, Estimate, EstimateFailed, Estimator, OnEval


class CachedEstimator(Estimator):
    """Per-study state: the feature cache (its entries in memory per worker, its files shared)."""

    capabilities = Capabilities(intermediate=True, prefilter=False)

    def prepare_run(self) -> None:
        """Refuse what the cache cannot express before any worker starts; entries are built lazily, by the first
        worker that needs a resolution, under a file lock (the resolutions a study draws are not known here)."""
        from scalesearch.training.feature_cache import check_augmentation

        check_augmentation(self.study.config.train_config.scale_range)
        check_pretrained_space(dict(self.study.config.space))

    def prepare(self) -> None:
        from scalesearch.training.feature_cache import FeatureCache, check_augmentation

        check_augmentation(self.study.config.train_config.scale_range)
        folder = self.study.cache_dir / "features" if self.study.cache_dir is not None else None
        self.cache = FeatureCache(folder, limit=int(self.study.config.search.cache_gb * 2**30),
                                  progress=self.study.progress)

    def estimate(self, spec: Any, seed: int, *, threads: int | None = None, on_eval: OnEval | None = None) -> Estimate:
        import torch

        from scalesearch.training.train import TrainingFailed

        cfg = self.study.config.trial_train_config(seed)
        if threads:
            cfg = dataclasses.replace(cfg, threads=threads)
        before = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        try:
            data = self.cache.get(spec, self.study.data.train, self.study.data.val, cfg)
            result = train_on_features(spec, data, cfg, on_eval=on_eval, progress=self.study.progress)
        except TrainingFailed as exc:
            raise EstimateFailed(f"training failed: {exc.reason}") from None
        finally:
            torch.set_num_threads(before)
        curve = {step: found.get("map") for step, found in result.intermediate.items()}
        return Estimate(metrics=dict(result.metrics), steps=result.steps, curve=curve,
                        train_seconds=result.train_seconds, eval_seconds=result.eval_seconds,
                        images_per_second=result.images_per_second)


def check_pretrained_space(space: dict[str, Any]) -> None:
    """``UserError`` unless every trial the space draws has a pretrained backbone (``space.pretrained: true``, or
    ``space.weights`` naming weights in every choice): there is nothing to cache in a backbone that trains."""
    key = "pretrained" if "pretrained" in space else "weights"
    value = space.get(key, "none")
    choices = value if isinstance(value, list) else [value]
    if any(c in (False, "none") for c in choices):
        want = "true" if key == "pretrained" else "weights in every choice ('package' or a file)"
        raise UserError(f"space.{key}: the cached estimator (search.estimator: cached) trains on a frozen pretrained "
                        f"backbone, so it must be {want}, but got {value!r}")


def train_on_features(spec: Any, data: Any, cfg: Any, *, on_eval: OnEval | None = None, progress: bool = False) -> Any:
    """Train ``spec``'s feature network and heads on ``data`` (a ``feature_cache.CachedData``) within ``cfg``'s
    budget and COCO-evaluate them on its val features: a ``train.TrainResult`` whose metrics are those of
    ``train.train_and_evaluate`` (the scored weights' COCO keys, ``map_raw``, ``map_ema``, ``train_loss``).

    Same as a live training of ``spec`` with its backbone frozen (``feature_cache.training_parts``), through
    ``train.train_loop`` (recipe, EMA, intermediate and learning-curve evaluations) and ``train.predict_coco``."""
    import time

    from scalesearch.training import feature_cache as fc
    from scalesearch.training import train
    from scalesearch.training.evaluate import coco_evaluate

    spec, model, step_loss, loader = fc.training_parts(spec, data, cfg)

    def evaluate(m):
        return coco_evaluate(data.val.coco, fc.val_detections(m, spec, data, cfg))

    loop, final = train.train_loop(model, step_loss, loader, cfg, evaluate=evaluate, on_eval=on_eval, progress=progress)
    eval_start = time.perf_counter()
    metrics, weights_metrics = train.score_weights(loop, cfg, lambda name, m: evaluate(m))
    return train.TrainResult(
        metrics=metrics, steps=loop.steps, train_seconds=loop.seconds,
        eval_seconds=loop.eval_seconds + time.perf_counter() - eval_start,
        images_per_second=loop.steps * cfg.batch_size / max(loop.seconds, 1e-9), losses=loop.losses,
        intermediate=loop.intermediate, spec=spec, info=data.train.info, model=final,
        weights_metrics=weights_metrics,
    )
