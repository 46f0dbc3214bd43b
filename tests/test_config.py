"""Study files: valid forms, and every kind of user mistake as one clear line with exit code 2."""

from __future__ import annotations

import pytest
import yaml

from scalesearch.cli import main
from scalesearch.config import load_study, parse_count

BASE = {
    "name": "check",
    "dataset": {"path": "synthetic"},
    "space": {"phi": [0, 1], "topology": ["fpn", "bifpn"], "resolution": 128},
    "budgets": {"flops": "2.5B"},
    "train": {"steps": 2},
    "search": {"n_trials": 2},
}


def _write(tmp_path, study: dict, name: str = "study.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(study))
    return path


def _with(path: str, value) -> dict:
    """BASE with ``a.b.c`` set to ``value`` (a copy)."""
    study = yaml.safe_load(yaml.safe_dump(BASE))
    *parents, last = path.split(".")
    node = study
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return study


def test_valid_study_forms(tmp_path):
    study = _with("objectives", ["maximize map", "minimize flops"])
    study["budgets"] = {"flops": ["2e9", "300M", 1e9], "params": "4M"}
    study["search"].update(sampler="nsga2", pruning=False)
    config = load_study(_write(tmp_path, study), ["search.n_trials=7", "space.fusion=[sum, fast]"])
    assert config.budgets.flops == [3e8, 1e9, 2e9] and config.budgets.params == 4e6
    assert config.directions == ["maximize", "minimize"] and config.search.n_trials == 7
    assert config.space["fusion"] == ["sum", "fast"] and config.dataset.path is None
    assert config.output_dir().as_posix() == "runs/check"
    with pytest.raises(Exception):  # frozen
        config.seed = 3


def test_space_from_a_file_and_count_suffixes(tmp_path):
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "s_space.yaml").write_text("phi: {low: 0, high: 2, step: 1}\nfusion: attn\n")
    config = load_study(_write(tmp_path, _with("space", "spaces/s_space.yaml")))
    assert config.space["phi"].step == 1 and config.space["fusion"] == "attn"
    assert [parse_count(v) for v in ("2.5B", "300M", "1.5e9", "4K", 7)] == [2.5e9, 3e8, 1.5e9, 4e3, 7.0]


MISTAKES = [  # (id, study, --set overrides, expected message)
    ("unknown key", _with("serach", {}), [], "serach: unknown key 'serach' (close names: search, space)"),
    ("unknown nested key", _with("search.n_trails", 3), [], "search.n_trails: unknown key 'n_trails' (close names: n_trials)"),
    ("wrong type", _with("search.n_trials", "many"), [], "search.n_trials: input should be a valid integer, unable to parse string as an integer, but got 'many'"),
    ("negative budget", _with("budgets.flops", -1), [], "budgets.flops: every FLOPs budget must be > 0, but got -1"),
    ("empty budget ladder", _with("budgets.flops", []), [], "budgets.flops: the FLOPs ladder must not be empty"),
    ("unreadable budget", _with("budgets.flops", "lots"), [], "budgets.flops: must be a number such as 2.5e9 or '2.5B'"),
    ("negative params budget", _with("budgets.params", "-3M"), [], "budgets.params: must be a number such as 2.5e9 or '2.5B'"),
    ("unknown topology", _with("space.topology", ["fpn", "bifpm"]), [], "space.topology: unknown topology 'bifpm' (close names: bifpn"),
    ("unknown fusion", _with("space.fusion", "fastest"), [], "space.fusion: unknown fusion 'fastest' (close names: fast"),
    ("unknown sampler", _with("search.sampler", "tpee"), [], "search.sampler: unknown sampler 'tpee' (close names: tpe)"),
    ("unknown backend", _with("search.backend", "rayy"), [], "search.backend: unknown search backend 'rayy' (close names: ray)"),
    ("unknown pruner", _with("search.pruning", "medain"), [], "search.pruning: unknown pruner 'medain' (close names: median)"),
    ("low > high", _with("space.phi", {"low": 2, "high": 1}), [], "space.phi: low <= high must hold, but got (low=2, high=1)"),
    ("range for a name", _with("space.topology", {"low": 0, "high": 1}), [], "space.topology: must be a value or a list of choices, not a range"),
    ("unknown parameter", _with("space.fpn_channel", 64), [], "space.fpn_channel: unknown parameter 'fpn_channel' (close names: fpn_channels"),
    ("dataset path missing", _with("dataset.path", "/no/such/data"), [], "dataset.path: the dataset folder must exist, but got '/no/such/data'"),
    ("n_trials < 1", _with("search.n_trials", 0), [], "search.n_trials: input should be greater than or equal to 1, but got 0"),
    ("seeds < 1", _with("seeds", 0), [], "seeds: input should be greater than or equal to 1, but got 0"),
    ("bad --set syntax", BASE, ["search.n_trials"], "--set: each override must read KEY.PATH=VALUE, but got 'search.n_trials'"),
    ("unknown --set key", BASE, ["search.n_trails=3"], "--set search.n_trails: unknown key 'n_trails' (close names: n_trials)"),
    ("bad --set value", BASE, ["search.workers=-2"], "search.workers: input should be greater than or equal to 1, but got -2"),
    ("objectives not understood", _with("objectives", "maximise map"), [], "objectives: each objective must read 'maximize|minimize METRIC'"),
    ("three objectives", _with("objectives", ["maximize map", "minimize flops", "minimize params"]), [], "objectives: give one or two different objectives"),
    ("sampler vs objectives", _with("objectives", ["maximize map", "minimize flops"]) | {"search": {"sampler": "cmaes"}}, [],
     "search.sampler: 'cmaes' handles one objective only, but the study has 2"),
    ("pruning vs objectives", _with("objectives", ["maximize map", "minimize flops"]) | {"search": {"pruning": "median"}}, [],
     "search.pruning: with 2 objectives only 'successive_halving' (over non-dominated sorting) is available, but got 'median'"),
    ("pruning without eval_every", _with("search.pruning", "hyperband"), [],
     "search.pruning: 'hyperband' stops trials at intermediate evaluations, so train.eval_every must be set"),
    ("prefilter keep", _with("search.prefilter", {"keep": 0}), [], "search.prefilter.keep"),
    ("prefilter score", _with("search.prefilter", {"score": "snip"}), [], "search.prefilter.score"),
    ("unknown train key", _with("train.stepz", 3), [], "train.stepz: unknown key 'stepz' (close names: steps"),
    ("bad train value", _with("train.optimizer", "adam"), [], "train.optimizer: must be one of"),
    ("infinite lr", BASE, ["train.lr=.inf"], "train.lr: must be a finite number > 0, but got inf"),
    ("objective against its metric", _with("objectives", ["maximize flops"]), [],
     "objective 'maximize flops': flops is better when it is minimized, but the study asks to maximize it"),
    ("unknown synthetic key", _with("dataset.synthetic", {"num_imgs": 3}), [], "dataset.synthetic: unknown key 'num_imgs'"),
    ("grid over a continuous range", _with("space.phi", {"low": 0.0, "high": 1.0}) | {"search": {"sampler": "grid"}}, [],
     "search.sampler: 'grid' needs choices or a stepped range, but space.phi is the continuous range"),
    ("enqueued point off the space", _with("search.enqueue", [{"label": "x", "params": {"phi": 5}}]), [],
     "search.enqueue[0].params.phi: must lie in the space ([0, 1]), but got 5"),
    ("bad study name", _with("name", "my study"), [], "name: string should match pattern"),
]


@pytest.mark.parametrize("study, overrides, message", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_user_mistakes_give_one_line_and_exit_2(tmp_path, capsys, study, overrides, message):
    path = _write(tmp_path, study)
    args = ["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("scalesearch run: error: ") and message in err, err


def test_missing_study_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert f"study file '{tmp_path / 'nope.yaml'}': the file must exist, but it was not found" in capsys.readouterr().err


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nspace:\n  phi: [0, 1\nsearch: {}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "YAML syntax error at line 4, column 7" in err, err


def test_missing_space_file(tmp_path, capsys):
    assert main(["run", str(_write(tmp_path, _with("space", "spaces/none_space.yaml")))]) == 2
    assert "space file 'spaces/none_space.yaml': the file must exist" in capsys.readouterr().err


def test_out_naming_a_file_is_one_line_and_leaves_it_alone(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    assert main(["run", str(_write(tmp_path, BASE)), "--out", str(target), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out '{target}': must be a folder for the run, but it is a file" in err
    assert target.read_text() == "mine"


def test_resuming_a_folder_with_another_space_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "study.yaml").write_text(yaml.safe_dump(_with("space", {"phi": 0})))
    assert main(["run", str(_write(tmp_path, BASE)), "--out", str(tmp_path / "run")]) == 2
    assert "study.yaml has a different 'space'; use another output folder" in capsys.readouterr().err
