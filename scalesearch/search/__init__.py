"""The search engine: spaces, the objective, the Optuna and Ray Tune backends, trial records.

``run_study(config, run_dir)`` runs or resumes a study (``scalesearch.config.load_study`` makes the
config); ``load_records(run_dir)`` reads its trial records (schema in docs/design.md).
"""

from scalesearch.search.records import load_records
from scalesearch.search.runner import run_study
from scalesearch.search.space import SearchSpace

__all__ = ["SearchSpace", "load_records", "run_study"]
