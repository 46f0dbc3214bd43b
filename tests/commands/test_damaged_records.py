"""A hand-edited or damaged run-folder file (trials.json, meta.json, fidelity.json, extrapolation.json) stops
``report``, ``trials``, ``fidelity`` and ``extrapolate`` with one line naming the file and the record, exit 2,
no traceback, nothing written and nothing trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import scalesearch.retrain.extrapolate
import scalesearch.retrain.fidelity
from scalesearch.cli import main

RUNS = Path(__file__).resolve().parents[2] / "reports" / "runs"
TRIAL, ROW = 3, 1  # the damaged record of trials.json, of fidelity.json / extrapolation.json


def _rows(path: Path) -> list:
    return json.loads(path.read_text())


def _save(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1))


def _edit(index: int, change):
    """A damage that edits record ``index`` of a list file."""
    def damage(path: Path) -> None:
        rows = _rows(path)
        rows[index] = change(rows[index])
        _save(path, rows)
    return damage


def _with(record: dict, **changes) -> dict:
    return {**record, **changes}


def _without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\x00 not json")


def _trials_id(path: Path) -> str:
    return f"record {TRIAL} (trial number {_rows(path)[TRIAL]['number']})"


def _row_id(path: Path) -> str:
    return f"record {ROW} (group {_rows(path)[ROW]['group']!r})"


# damage kind -> file -> (damage, the expected message after "PATH: ", given the undamaged file)
DAMAGES = {
    "unknown enum": {
        "trials.json": (_edit(TRIAL, lambda r: _with(r, state="exploded")),
                        lambda p: f"{_trials_id(p)}: unknown state 'exploded' (valid: complete, infeasible, failed, "
                                  "pruned, running)"),
        "fidelity.json": (_edit(ROW, lambda r: _with(r, spec={**r["spec"], "activation": "exploded"})),
                          lambda p: f"{_row_id(p)}: unknown spec.activation 'exploded' (valid: swish, relu6, relu)"),
    },
    "missing key": {
        "trials.json": (_edit(TRIAL, lambda r: _without(r, "number")),
                        lambda p: f"record {TRIAL}: missing required key 'number'"),
        "fidelity.json": (_edit(ROW, lambda r: _without(r, "maps")),
                          lambda p: f"{_row_id(p)}: missing required key 'maps'"),
    },
    "wrong type": {
        "trials.json": (_edit(TRIAL, lambda r: _with(r, flops="lots")),
                        lambda p: f"{_trials_id(p)}: flops: must be a number or null, but got 'lots'"),
        "fidelity.json": (_edit(ROW, lambda r: _with(r, proxy_map="lots")),
                          lambda p: f"{_row_id(p)}: proxy_map: must be a number, but got 'lots'"),
        "meta.json": (lambda p: _save(p, {**_rows(p), "runs": "lots"}),
                      lambda p: "runs: must be an integer or null, but got 'lots'"),
    },
    "record is a list": {
        "trials.json": (_edit(TRIAL, lambda r: list(r.values())),
                        lambda p: f"record {TRIAL}: must be an object of keys, but got a list"),
        "fidelity.json": (_edit(ROW, lambda r: list(r.values())),
                          lambda p: f"record {ROW}: must be an object of keys, but got a list"),
        "meta.json": (lambda p: _save(p, list(_rows(p).items())),
                      lambda p: "must hold an object of keys (written by `scalesearch run`), but got a list"),
    },
    "truncated": {name: (_truncate, lambda p: "must be valid JSON")
                  for name in ("trials.json", "fidelity.json", "meta.json")},
    "garbage": {name: (_garbage, lambda p: "must be UTF-8 JSON text, but byte 0x89 at offset 0 is not")
                for name in ("trials.json", "fidelity.json", "meta.json")},
}

# (command, committed run folder, damaged file): every file the command reads
TARGETS = [
    ("trials", "quickstart", "trials.json"),
    ("report", "quickstart", "trials.json"),
    ("report", "quickstart", "meta.json"),
    ("report", "fidelity_bccd", "fidelity.json"),
    ("report", "compound_coefficients_bccd", "extrapolation.json"),
    ("fidelity", "fidelity_bccd", "trials.json"),
    ("fidelity", "fidelity_bccd", "fidelity.json"),
    ("extrapolate", "compound_coefficients_bccd", "trials.json"),
    ("extrapolate", "compound_coefficients_bccd", "fidelity.json"),
    ("extrapolate", "compound_coefficients_bccd", "extrapolation.json"),
]
CASES = [pytest.param(command, run, file, kind, id=f"{command}-{run}-{file}-{kind.replace(' ', '_')}")
         for command, run, file in TARGETS for kind, files in DAMAGES.items()
         if (file if file != "extrapolation.json" else "fidelity.json") in files]  # same record format


def _argv(command: str, run: Path, out: Path) -> list[str]:
    return {"trials": ["trials", str(run), "--json", str(out / "trials.json")],
            "report": ["report", str(run), "--out", str(out)],
            "fidelity": ["fidelity", str(run)],
            "extrapolate": ["extrapolate", str(run), "--flops", "1e12"]}[command]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_training(monkeypatch):
    """Training, FLOPs fitting and latency measurement fail the test at once instead of running."""
    def refuse(*args, **kwargs):
        raise AssertionError("the damaged file was not detected before training")

    monkeypatch.setattr(scalesearch.retrain.fidelity, "study_trainer", refuse)
    monkeypatch.setattr(scalesearch.retrain.fidelity, "measure_latencies", refuse)
    monkeypatch.setattr(scalesearch.retrain.extrapolate, "study_trainer", refuse)
    monkeypatch.setattr(scalesearch.retrain.extrapolate, "fit_phi", refuse)


@pytest.mark.parametrize("command, source, file, kind", CASES)
def test_damaged_file_stops_with_one_line(tmp_path, capsys, no_training, command, source, file, kind):
    run = tmp_path / "run"
    shutil.copytree(RUNS / source, run)
    path = run / file
    damage, expected = DAMAGES[kind][file if file != "extrapolation.json" else "fidelity.json"]
    message = expected(path)
    damage(path)
    before = _snapshot(run)
    out = tmp_path / "out"

    assert main(_argv(command, run, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert err.startswith(f"scalesearch {command}: error: {path}: "), err
    assert message in err, err
    assert not out.exists()
    assert _snapshot(run) == before  # nothing written into the run folder either (no fidelity.json, no report/)


def test_undamaged_copy_works(tmp_path, capsys):
    """The control: the same copy, undamaged, is read without complaint."""
    run = tmp_path / "run"
    shutil.copytree(RUNS / "quickstart", run)
    assert main(["trials", str(run), "--json", str(tmp_path / "out" / "t.json")]) == 0
    assert (tmp_path / "out" / "t.json").is_file() and capsys.readouterr().err == ""
