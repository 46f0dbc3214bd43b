"""``scalesearch count``: one spec's params and FLOPs per part, and its one-line user errors."""

import json

import pytest

from scalesearch import cli


def test_count_command(capsys, tmp_path):
    out = tmp_path / "d0.json"
    assert cli.main(["count", "--preset", "D0", "--json", str(out)]) == 0
    assert "total           3,880,067      2,570,808,832" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["flops"] == 2_570_808_832 and data["spec"]["backbone"] == "tf_efficientnet_b0"
    assert cli.main(["count", "--phi", "-3", "--num-classes", "5", "--fusion", "attn"]) == 0
    assert "phi=-3: efficientnet_b0 R=128 W=24 D_fpn=1 D_head=2 bifpn/softmax" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--preset", "d9"], "unknown preset 'd9' (close names: d7"),
    (["--resolution", "500"], "must be a positive multiple of the backbone's last stride 32, but got 500"),
    (["--backbone", "efficientnet_b9"], "unknown backbone 'efficientnet_b9' (close names: efficientnet_b8"),
    (["--topology", "bifnp"], "unknown topology 'bifnp'"),
    (["--phi", "-5"], "phi too small"),
    (["--fusion", "avg"], "unknown fusion 'avg'"),
    (["--json", "."], "--json .: must be a file path, but it is a folder"),
])
def test_count_command_errors(user_error, argv, message):
    assert message in user_error("count", *argv)
