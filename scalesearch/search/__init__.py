"""The search engine: spaces, the one trial objective, and the backends (Optuna, Ray Tune) that schedule it.

``run_study(config, run_dir)`` runs or resumes a study (``scalesearch.config.load_study`` makes the
config); its records are read with ``scalesearch.records.load_records(run_dir)``.

The names load on first use (PEP 562): study validation reads the backend and sampler registries
(``search.backend``, ``search.samplers``) without loading the runner, so ``scalesearch --help`` and
``scalesearch report`` stay fast.
"""

from __future__ import annotations

from scalesearch.lazy import lazy_exports

_EXPORTS = {"SearchSpace": "scalesearch.search.space", "run_study": "scalesearch.search.runner"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("scalesearch.search", _EXPORTS, globals())
