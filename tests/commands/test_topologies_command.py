"""``scalesearch topologies``: counts beside effdet's, the report and drawings, and its user errors."""

import pytest

from scalesearch.cli import main


def test_topologies_command_end_to_end(tmp_path, capsys):
    md = tmp_path / "r" / "topologies.md"
    argv = ["topologies", "--variants", "d0", "--topologies", "bifpn", "--fusions", "fastattn",
            "--md", str(md), "--figures", str(tmp_path / "r" / "figures"), "--draw", "--quiet"]
    assert main(argv) == 0
    text = md.read_text()
    # D0 bifpn_fa: effdet 0.4.1 counts 3,880,067 params (REFERENCE.md) and fvcore 2.571B FLOPs.
    assert "| bifpn | fast | 3,880,067 | 3,880,067 (equal) | 2.571 | " in text
    assert "![bifpn](figures/topology_bifpn.png)" in text
    assert (tmp_path / "r" / "figures" / "topology_bifpn.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, message", [
    (["--fusions", "avg"], "scalesearch topologies: error: unknown fusion 'avg'"),
    (["--variants", "d9"], "unknown preset 'd9'"),
    (["--variants", ","], "--variants: must list at least one name, but got ','"),
    (["--topologies", "nope"], "unknown topology 'nope'"),
    (["--md", "."], "--md .: must be a file path, but it is a folder"),
])
def test_topologies_command_user_error(user_error, argv, message):
    assert message in user_error("topologies", *argv)


def test_figures_naming_a_file_fails_before_drawing(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert main(["topologies", "--figures", str(tmp_path / "f"), "--draw"]) == 2
    assert "--figures " in capsys.readouterr().err and not list(tmp_path.glob("topology_*"))
