"""The search engine: spaces, the one trial objective, and the backends (Optuna, Ray Tune) that schedule it.

``run_study(config, run_dir)`` runs or resumes a study (``scalesearch.config.load_study`` makes the
config); its records are read with ``scalesearch.records.load_records(run_dir)``.
"""

from scalesearch.search.runner import run_study
from scalesearch.search.space import SearchSpace

__all__ = ["SearchSpace", "run_study"]
