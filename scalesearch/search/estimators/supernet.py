"""``supernet``: one-shot estimation. For studies that fix a pretrained backbone and vary the feature network's
width and depth, the heads' depth, the resolution, the fusion and the activation: one weight-sharing supernet per
topology (``scalesearch.model.supernet``) is trained once per study run on the cached backbone features
(``prepare_run``: sandwich rule with in-place distillation, ``scalesearch.training.supernet``; resumable from its
checkpoints under the run's estimator folder, so a rerun, or a run after a SIGKILL, continues where it stopped; a
finished one leaves ``supernet_final.pt`` there, which a run folder keeps under version control, so a new checkout
scores with the same supernet instead of training another);
each trial then extracts its sub-network, re-estimates its batch-norm statistics on ``search.supernet.calib_images``
train images and COCO-evaluates it on the val features: seconds, not minutes.

Settings: ``search.supernet`` (``config_parts.SupernetConfig``): sandwich steps (default 4 x ``train.steps``), random
children per step, distillation weight, checkpoint interval, calibration images, how many supernets a study may
train. What the space may vary: ``fpn_channels``, ``fpn_repeats``, ``head_repeats``, ``resolution``, ``fusion``,
``activation`` (each a value, a list or a stepped range) and ``topology`` (a list of plain topologies: one supernet
each); every other spec field fixed, the backbone pretrained, ``train.scale_range`` [1, 1] (the feature cache).

Capabilities: no intermediate mAP (nothing to prune), no prefilter (a trial costs less than a zero-cost score).
The trial's ``steps`` is 0 (it trains nothing); ``map`` is the scored weights' (``train.scored``: the supernet's
EMA or raw weights) and is also recorded as ``map_<scored>``.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError
from scalesearch.search.estimators import Capabilities, Estimate, Estimator, OnEval

ELASTIC_KEYS = ("fpn_channels", "fpn_repeats", "head_repeats", "resolution", "fusion", "activation")
FIXED_BY_RULE = ("phi",)  # a compound coefficient would move the elastic values together: not a supernet's space


@dataclass(frozen=True)
class SupernetPlan:
    """What a study's supernets are: the elastic ``space`` (an ``ElasticSpace``'s values, torch-free here) and one
    ``base`` spec per topology (a spec of that topology; its elastic fields are replaced per sub-network)."""

    values: dict[str, tuple[Any, ...]]
    bases: dict[str, Any]  # topology -> DetectorSpec

    @property
    def size(self) -> int:
        n = len(self.bases)
        for v in self.values.values():
            n *= len(v)
        return n


def supernet_plan(config: Any, num_classes: int = 1) -> SupernetPlan:
    """The study's supernets, or ``UserError`` (one line naming the key) for a space a supernet cannot hold."""
    from scalesearch.search.space import SearchSpace, _grid_axis, _is_free, _values
    from scalesearch.topology import canonical_fusion

    space = SearchSpace(config)
    params = dict(config.space)
    for key in FIXED_BY_RULE:
        if key in params and _is_free(params[key]):
            raise UserError(f"space.{key}: the supernet estimator needs the elastic dimensions given directly "
                            f"({', '.join(ELASTIC_KEYS)}), not through a free compound coefficient")
    if space.families:
        name = sorted(space.families)[0]
        raise UserError(f"space.topology: the supernet estimator trains one supernet per topology, so it cannot "
                        f"search the topology family {name!r}; list plain topologies")
    allowed = set(ELASTIC_KEYS) | {"topology"}
    for key, value in params.items():
        if _is_free(value) and key not in allowed:
            raise UserError(f"space.{key}: the supernet estimator shares weights across {', '.join(ELASTIC_KEYS)} "
                            f"and topology only, so space.{key} must be fixed")
    topologies = [str(t) for t in _values(params.get("topology", "bifpn"))]
    limit = config.search.supernet.max_supernets
    if len(topologies) > limit:
        raise UserError(f"search.supernet.max_supernets: space.topology lists {len(topologies)} topologies (one "
                        f"supernet each), over the limit {limit}; raise it or list fewer")
    first = {k: _values(v)[0] for k, v in params.items() if _is_free(v)}
    bases = {t: space.resolve({**first, "topology": t} if "topology" in first else first, num_classes)
             .replace(topology=t) for t in topologies}
    any_base = next(iter(bases.values()))
    values = {}
    for key in ELASTIC_KEYS:
        value = params.get(key)
        axis = _grid_axis(key, value) if value is not None and _is_free(value) else [getattr(any_base, key)]
        if key == "fusion":
            axis = [canonical_fusion(str(v)) for v in axis]
        values[key] = tuple(int(v) if key not in ("fusion", "activation") else str(v) for v in axis)
    count = len(topologies) * len(values["resolution"])
    if config.search.supernet.per_resolution and count > limit:
        raise UserError(f"search.supernet.max_supernets: {len(topologies)} topologies x {len(values['resolution'])} "
                        f"resolutions (search.supernet.per_resolution) make {count} supernets, over the limit {limit}; "
                        "raise it or list fewer")
    return SupernetPlan(values, bases)


def check_supernet_study(config: Any) -> SupernetPlan:
    """Everything ``prepare_run`` refuses, before anything is built."""
    from scalesearch.search.estimators.cached import check_pretrained_space
    from scalesearch.training.feature_cache import check_augmentation

    check_augmentation(config.train_config.scale_range)
    check_pretrained_space(dict(config.space))
    return supernet_plan(config)


class SupernetEstimator(Estimator):
    """Per-study state: the feature cache and the trained supernets (one per topology)."""

    capabilities = Capabilities(intermediate=False, prefilter=False)

    # -- once per run: train (or resume) every supernet ---------------------------------------
    def prepare_run(self) -> None:
        check_supernet_study(self.study.config)
        self.prepare()
        for topology, resolution in self.units():
            self.supernet(topology, resolution)

    def units(self) -> list[tuple[str, int | None]]:
        """The supernets the study trains: (topology, None) for each topology, or (topology, resolution) for each
        resolution too with ``search.supernet.per_resolution``."""
        split = self.plan.values["resolution"] if self.study.config.search.supernet.per_resolution else (None,)
        return [(topology, resolution) for topology in self.plan.bases for resolution in split]

    def unit_of(self, spec: Any) -> tuple[str, int | None]:
        """The (topology, resolution) of ``units`` that scores ``spec``."""
        return spec.topology, spec.resolution if self.study.config.search.supernet.per_resolution else None

    def prepare(self) -> None:
        from scalesearch.training.feature_cache import FeatureCache

        config = self.study.config
        self.plan = supernet_plan(config, self.study.data.num_classes)
        folder = self.study.cache_dir / "features" if self.study.cache_dir is not None else None
        self.cache = getattr(self, "cache", None) or FeatureCache(folder, limit=int(config.search.cache_gb * 2**30),
                                                                  progress=self.study.progress)
        self.trained: dict[str, Any] = getattr(self, "trained", {})
        self.prepared = True

    def settings(self) -> Any:
        from scalesearch.training.supernet import SandwichConfig

        s = self.study.config.search.supernet
        steps = s.steps or 4 * (self.study.config.train_config.steps or 150)
        if s.per_resolution and s.steps is None:  # the same compute per topology as one multi-resolution supernet
            steps = -(-steps // len(self.plan.values["resolution"]))
        return SandwichConfig(steps=steps, random_children=s.random_children, distill_weight=s.distill_weight,
                              checkpoint_every=s.checkpoint_every)

    def features(self, spec: Any) -> Any:
        """The feature-cache entry of ``spec``'s backbone at its resolution."""
        cfg = self.study.config.train_config
        return self.cache.get(spec, self.study.data.train, self.study.data.val, cfg)

    def supernet(self, topology: str, resolution: int | None = None) -> Any:
        """The trained supernet of ``topology`` (at ``resolution`` alone, with ``search.supernet.per_resolution``;
        None: over every resolution of the space): from memory, or trained now (resuming its checkpoint)."""
        name = topology if resolution is None else f"{topology} {resolution} px"
        if name in self.trained:
            return self.trained[name]
        import torch

        from scalesearch.model.supernet import ElasticSpace, Supernet
        from scalesearch.training.supernet import train_supernet

        config, how = self.study.config, self.settings()
        cfg = dataclasses.replace(config.train_config, seed=config.seed)
        space = ElasticSpace(**self.values(resolution))
        base = self.plan.bases[topology]
        data = {r: self.features(base.replace(resolution=r)) for r in space.resolution}
        channels = [level.shape[1] for level in next(iter(data.values())).train.levels]
        key, folder = self.checkpoint(topology, data, resolution)
        before = torch.get_num_threads()
        threads = config.search.threads_per_worker or cfg.threads
        if threads:
            torch.set_num_threads(threads)
        try:
            torch.manual_seed(0)
            supernet = Supernet(base, space, channels, init_seed=cfg.seed)
            result = train_supernet(supernet, data, cfg, how, folder=folder, progress=self.study.progress, key=key)
        finally:
            torch.set_num_threads(before)
        print(f"scalesearch run: supernet {name}: {space.size} sub-networks, {result.steps} sandwich steps "
              f"({_how_made(result)}; "
              f"{result.seconds / 60:.1f} min wall, {result.cpu_seconds / 60:.1f} CPU-min in all)", file=sys.stderr)
        if folder is not None:
            _write_summary(folder, topology, space, how, result, resolution)
        self.trained[name] = result
        return result

    def values(self, resolution: int | None = None) -> dict[str, tuple[Any, ...]]:
        """The elastic values of a supernet: the plan's, or with one ``resolution`` (a per-resolution supernet)."""
        return self.plan.values if resolution is None else {**self.plan.values, "resolution": (resolution,)}

    def checkpoint(self, topology: str, data: dict[int, Any], resolution: int | None = None) -> tuple[str, Path | None]:
        """(key, folder) of the supernet checkpoint of ``topology`` (at one ``resolution``, a per-resolution one),
        ``data`` its feature entries by resolution. The features enter the key by entry name (a digest of what they hold), not path: a moved run
        folder or a dataset copied again (same bytes, new modification times) resumes its supernets."""
        from scalesearch.files import digest

        config, how = self.study.config, self.settings()
        cfg = dataclasses.replace(config.train_config, seed=config.seed)
        features = sorted(e.path.name if e.path is not None else "" for e in data.values())
        key = digest({"base": self.plan.bases[topology].to_dict(), "space": self.values(resolution),
                      "how": dataclasses.asdict(how), "train": dataclasses.asdict(cfg), "features": features})
        stem = _slug(topology) + ("" if resolution is None else f"-{resolution}px")
        folder = self.study.cache_dir / "supernet" / f"{stem}-{key}" if self.study.cache_dir else None
        return key, folder

    # -- per trial ---------------------------------------------------------------------------
    def estimate(self, spec: Any, seed: int, *, threads: int | None = None, on_eval: OnEval | None = None) -> Estimate:
        import torch

        from scalesearch.training.supernet import score_subnetwork

        topology = spec.topology
        if topology not in self.plan.bases:
            raise UserError(f"space.topology: {topology!r} has no supernet (trained: {', '.join(self.plan.bases)})")
        trained = self.supernet(*self.unit_of(spec))
        choice = {key: getattr(spec, key) for key in ELASTIC_KEYS}
        if not trained.model.space.contains(choice):
            raise UserError(f"search.estimator: supernet: the trial's {choice} lies outside the supernet's space "
                            f"{self.plan.values}")
        cfg = self.study.config.trial_train_config(seed)
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            data = self.features(spec)
            metrics, times = score_subnetwork(trained.model, choice, data, cfg,
                                              calib_images=self.study.config.search.supernet.calib_images, seed=seed)
        finally:
            torch.set_num_threads(before)
        metrics = {**metrics, f"map_{trained.scored}": metrics.get("map")}
        return Estimate(metrics=metrics, steps=0, train_seconds=times["recalibrate"], eval_seconds=times["evaluate"])


def _how_made(result: Any) -> str:
    """How a run got its supernet: trained here, resumed from a checkpoint, or loaded finished (``FINAL``)."""
    from scalesearch.training.supernet import FINAL

    if result.loaded_final:
        return f"loaded from {FINAL}, trained earlier"
    return f"resumed at {result.resumed_from}" if result.resumed_from else "trained"


def _slug(topology: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in Path(topology).stem)
    return keep[:40] or "topology"


def _write_summary(folder: Path, topology: str, space: Any, how: Any, result: Any,
                   resolution: int | None = None) -> None:
    """``folder/summary.json``: what the run's supernet is and what it cost (relative, machine-free facts);
    ``resolution``: the one resolution of a per-resolution supernet (no key otherwise)."""
    import json

    from scalesearch.machine import identity

    summary = {"topology": topology, **({} if resolution is None else {"resolution": resolution}),
               "sub_networks": space.size,
               "space": {k: list(getattr(space, k)) for k in ELASTIC_KEYS}, "sandwich": dataclasses.asdict(how),
               "steps": result.steps, "seconds": result.seconds, "cpu_seconds": result.cpu_seconds,
               "scored": result.scored, "final_loss": result.losses[-1] if result.losses else None,
               "machine": result.machine or identity()}  # the machine that trained it, whoever loads it
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
