"""Versions of the files a run folder holds, and the one place where older files are read.

Every study (``study.yaml``), trial record (each row of ``trials.json``) and retrained record (each row of
``fidelity.json`` / ``extrapolation.json``) carries ``schema_version``. Readers pass what they read through
``upgrade`` first: a file without the key is version 1 (everything written before versions existed), each step
below turns version k into k + 1, and a version newer than this code reads is refused in one line (a run
written by a newer scalesearch). A change to a file's format is one more step here and one more version in
``CURRENT``; readers and writers elsewhere only know the current form. Torch-free.
"""

from __future__ import annotations

from typing import Any, Callable

KEY = "schema_version"
CURRENT = {"study": 2, "trial": 4, "fidelity": 3}


def upgrade_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A ``DetectorSpec`` mapping of any age in today's form: records written before ``weights`` held a bool
    ``pretrained`` that was always False (also in specs saved inside older checkpoints)."""
    if "pretrained" not in spec:
        return spec
    spec = dict(spec)
    spec.setdefault("weights", "package" if spec.pop("pretrained") else "none")
    return spec


def _trial_1_to_2(row: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds the estimator and its cost (None before: the proxy training, untimed) and drops the flat
    ``pretrained`` spec field."""
    return upgrade_spec(row)


def _trial_2_to_3(row: dict[str, Any]) -> dict[str, Any]:
    """Version 3 trains every point's seed s from the same per-part initial streams (paired seeds), evaluates
    the raw and averaged weights (``map_raw``, ``map_ema``) and may reuse an earlier result (``duplicate_of``).
    Version-2 records: seeds that fixed the data order only, raw weights, nothing reused."""
    return {**row, "paired_seeds": False}


def _trial_3_to_4(row: dict[str, Any]) -> dict[str, Any]:
    """Version 4 says where a latency came from (``latency_source``: the protocol, or the per-block table of
    ``latency.table``, whose prediction ``latency_table_ms`` is kept when the point is measured after the search).
    Every version-3 latency was measured by the protocol."""
    return {**row, "latency_source": "measured" if row.get("latency_ms") is not None else None}


def _fidelity_1_to_2(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("spec"), dict):
        row = {**row, "spec": upgrade_spec(row["spec"])}
    return row


def _fidelity_2_to_3(row: dict[str, Any]) -> dict[str, Any]:
    """Version 3 records both weights' mAP per seed, whether the seeds are paired, the wall time per seed and
    the retraining history. Every version-2 record scored the raw weights of unpaired seeds, with no history."""
    row = {**row, "scored": "raw", "paired": False}
    if isinstance(row.get("maps"), list):
        row["raw_maps"] = list(row["maps"])
    return row


def _study_1_to_2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds ``search.estimator`` (default ``train``, what every version-1 study used)."""
    return raw


STEPS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("trial", 1): _trial_1_to_2, ("trial", 2): _trial_2_to_3, ("trial", 3): _trial_3_to_4,
    ("fidelity", 1): _fidelity_1_to_2, ("fidelity", 2): _fidelity_2_to_3,
    ("study", 1): _study_1_to_2,
}


def upgrade(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a study mapping or one record, of any version) in the current form, with ``schema_version``
    set. ``ValueError`` naming the key for a version that is not a positive integer or is newer than this
    code reads (the callers add the file and record to the message)."""
    version = data.get(KEY, 1)
    newest = CURRENT[kind]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{KEY}: must be a positive integer, but got {version!r}")
    if version > newest:
        raise ValueError(f"{KEY}: {version} was written by a newer scalesearch (this one reads up to {newest}): "
                         "upgrade scalesearch to read it")
    for step in range(version, newest):
        data = STEPS[kind, step](data)
    return data if data.get(KEY) == newest else {**data, KEY: newest}
