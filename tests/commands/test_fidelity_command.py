"""``scalesearch fidelity``: argument mistakes exit 2 with one line, before any training."""

from __future__ import annotations

import pytest

from scalesearch.cli import main


@pytest.mark.parametrize("option, message", [(["--top-k", "1"], "--top-k: must be >= 2"),
                                             (["--factor", "0"], "--factor: must be > 0"),
                                             (["--seeds", "0"], "--seeds: must be >= 1")])
def test_bad_options_exit_2(tmp_path, capsys, option, message):
    assert main(["fidelity", str(tmp_path), *option]) == 2
    assert message in capsys.readouterr().err


def test_missing_run_folder_exits_2(tmp_path, capsys):
    assert main(["fidelity", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_longer_without_a_retraining_against_a_baseline_exits_2(tmp_path, capsys):
    assert main(["fidelity", str(tmp_path), "--longer", "16"]) == 2
    err = capsys.readouterr().err
    assert "--longer: fidelity.json must hold a labelled baseline with a measured latency and another" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option", [["--top-k", "2"], ["--factor", "8"], ["--against", "L"], ["--per-rung"]])
def test_picking_options_are_refused_with_longer(tmp_path, capsys, option):
    assert main(["fidelity", str(tmp_path), "--longer", "16", *option]) == 2
    err = capsys.readouterr().err
    assert f"{option[0]}: does not apply with --longer" in err and len(err.strip().splitlines()) == 1


def test_a_bad_device_exits_2_before_any_training(tmp_path, capsys):
    assert main(["fidelity", str(tmp_path), "--device", "tpu"]) == 2
    assert "--device: must be cpu, cuda[:N] or auto, but got 'tpu'" in capsys.readouterr().err


@pytest.mark.parametrize("option, message", [
    (["--trial", "3"], "--trial: applies to --frozen-backbone only"),
    (["--frozen-backbone", "--longer", "16"], "--longer: does not apply with --frozen-backbone"),
    (["--frozen-backbone", "--reuse", "x"], "--reuse: applies to --frozen-backbone with --against only"),
    (["--frozen-backbone", "--workers", "2"], "--workers: does not apply with --frozen-backbone"),
    (["--frozen-backbone", "--top-k", "2"], "--top-k: applies to --frozen-backbone with --against only"),
    (["--frozen-backbone", "--factor", "8"], "--factor: applies to --frozen-backbone with --against only"),
    (["--frozen-backbone", "--no-latency"], "--no-latency: applies to --frozen-backbone with --against only"),
    (["--frozen-backbone", "--against", "L", "--trial", "3"], "--trial: does not apply with --against"),
    (["--frozen-backbone"], "fidelity.json: not found or empty; retrain the run first (`scalesearch fidelity`)")])
def test_frozen_backbone_mistakes_exit_2_in_one_line(tmp_path, capsys, option, message):
    assert main(["fidelity", str(tmp_path), *option]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_frozen_backbone_against_passes_the_picking_options_through(tmp_path, monkeypatch, capsys):
    import scalesearch.retrain.fidelity as retrainer

    calls = []
    monkeypatch.setattr(retrainer, "retrain_frozen", lambda run_dir, *a, **kw: calls.append((a, kw)) or [])
    assert main(["fidelity", str(tmp_path), "--frozen-backbone", "--against", "Lite0", "--seeds", "7", "--save",
                 "--quiet"]) == 0
    assert main(["fidelity", str(tmp_path), "--frozen-backbone", "--against", "Lite0", "--top-k", "2", "--factor",
                 "8", "--no-latency", "--reuse", "other", "--quiet"]) == 0
    (first_args, first), (_, second) = calls
    assert first_args == ([], 7) and first["against"] == "Lite0" and first["save"] is True
    assert (first["reuse"], second["reuse"]) == (None, "other")
    assert (first["top_k"], first["factor"], first["latency"], first["remeasure"]) == (3, 4.0, None, False)
    assert (second["top_k"], second["factor"], second["latency"], second["save"]) == (2, 8.0, False, False)
    assert "fidelity_frozen.json (0 specs)" in capsys.readouterr().out
