"""Ray Tune on a real two-node Ray cluster on loopback (``ray start --head`` + ``ray start --address``): the
study reaches it through ``search.ray.address``, trials run on both nodes (recorded per trial), and a driver
killed mid-study is restored by rerunning ``scalesearch run`` (``Tuner.restore``) to exactly N trials.

Real tiny training (128 px, phi -3): about a minute on 2 cores with both nodes' start-up."""

from __future__ import annotations

import os
import re
import types
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import records_json, tiny_study

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):  # noqa: C901 - start, wait, stop
    """A head node and a second node, one CPU each, on 127.0.0.1; stopped (both) at the end."""
    command = Path(sys.executable).with_name("ray")
    if not command.is_file():
        pytest.skip("the ray command is not installed")
    port = _free_port()
    # One setting for every process of the cluster, the drivers included: a token left in ~/.ray by another
    # Ray must not switch the head to token authentication that the second node does not carry.
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    def own_ports() -> list[str]:  # two nodes on one host must not share the per-node agents' default ports
        return [f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
                f"--metrics-export-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}"]

    common = ["--num-cpus=1", "--disable-usage-stats"]
    subprocess.run([str(command), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                    "--include-dashboard=false", *common, *own_ports()],
                   check=True, capture_output=True, env=env, timeout=120)
    # The second node runs in the foreground (--block) in its own process group, so a test could kill it alone.
    second = subprocess.Popen([str(command), "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                               *common, *own_ports(), "--block"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline and _alive_nodes(address) < 2:
            time.sleep(1)
        assert _alive_nodes(address) == 2, "the second Ray node did not join"
        yield types.SimpleNamespace(address=address, second=second)
    finally:
        try:
            os.killpg(second.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        subprocess.run([str(command), "stop", "--force"], capture_output=True, env=env, timeout=120)
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous


def _alive_nodes(address: str) -> int:
    out = subprocess.run([sys.executable, "-c", "import ray, sys; ray.init(address=sys.argv[1], "
                          "logging_level='ERROR', log_to_driver=False); "
                          "print(sum(n['Alive'] for n in ray.nodes()))", address],
                         capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def _study(tmp_path: Path, address: str, n_trials: int, steps: int) -> Path:
    return tiny_study(tmp_path, train={"steps": steps, "batch_size": 2, "warmup_steps": 1},
                      search={"backend": "ray", "n_trials": n_trials, "sampler": "random", "workers": 2,
                              "zero_cost": False, "ray": {"address": address, "max_failures": 2}},
                      space={"phi": {"low": -3.0, "high": -2.8}, "resolution": 128})


def _run(study: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scalesearch.cli", "run", str(study), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SCALESEARCH_ZERO_COST": "0"})


def test_study_runs_on_both_nodes_of_a_cluster(tmp_path, cluster):
    proc = _run(_study(tmp_path, cluster.address, n_trials=4, steps=3))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    records = records_json(tmp_path / "run")
    assert sorted(r["number"] for r in records) == [0, 1, 2, 3] and {r["state"] for r in records} == {"complete"}
    nodes = {r["node"] for r in records}
    assert len(nodes) == 2 and all(n.startswith(socket.gethostname() + "/") for n in nodes), nodes


def test_killed_driver_is_restored_to_exactly_n_trials(tmp_path, cluster):
    study = _study(tmp_path, cluster.address, n_trials=6, steps=12)
    proc = _run(study)
    results = tmp_path / "run" / "ray"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill the driver once some trial has reported a result
        if any(results.glob("**/result.json")) and any(p.stat().st_size for p in results.glob("**/result.json")):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(results.glob("*/result.json")))
    rerun = _run(study)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-3000:]
    records = records_json(tmp_path / "run")
    numbers = [r["number"] for r in records]
    assert sorted(numbers) == list(range(6)), numbers  # exactly N, no duplicates
    assert {r["state"] for r in records} == {"complete"}
    assert len({r["phi"] for r in records}) == 6  # the restored searcher went on sampling new points
    assert done_before < 6
    shutil.rmtree(results, ignore_errors=True)


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, command line) of every process."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        out[int(proc.name)] = (int(fields[1]), int(fields[2]), title)
    return out


def _node_workers(pgid: int) -> dict[int, str]:
    """The Ray worker processes of the node started in process group ``pgid`` (children of its raylet, which
    starts them in groups of their own), pid -> title (``ray::<Class>.<method>`` while busy)."""
    procs = _processes()
    raylets = {pid for pid, (_, group, cmd) in procs.items() if group == pgid and "raylet" in cmd.split(" ")[0]}
    return {pid: cmd for pid, (parent, _, cmd) in procs.items() if parent in raylets and cmd.startswith("ray::")}


def test_killed_worker_node_mid_trial_is_retried(tmp_path, cluster):
    """Runs last in this module: it takes the second node away while one of its workers runs a trial (seen in
    the worker's process title, so the kill cannot fall between trials). The trial fails with the node and Tune
    runs it again (``search.ray.max_failures``) on the head: still exactly N trials."""
    study = _study(tmp_path, cluster.address, n_trials=4, steps=60)
    proc = _run(study)
    results = tmp_path / "run" / "ray"
    deadline = time.time() + 300
    workers: dict[int, str] = {}
    seen: set[str] = set()
    while time.time() < deadline and proc.poll() is None:
        workers = _node_workers(cluster.second.pid)
        seen.update(workers.values())
        if any("ImplicitFunc" in title for title in workers.values()):  # a Tune trial is running there
            break
        time.sleep(0.05)
    assert any("ImplicitFunc" in t for t in workers.values()), f"no trial ran on the second node (saw {sorted(seen)})"
    os.killpg(cluster.second.pid, signal.SIGKILL)  # ray start --block and its raylet ...
    for pid in workers:  # ... and its workers, which the raylet started in groups of their own
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    records = records_json(tmp_path / "run")
    assert sorted(r["number"] for r in records) == [0, 1, 2, 3] and {r["state"] for r in records} == {"complete"}
    state = "".join(p.read_text() for p in results.glob("experiment_state-*.json"))
    failures = [int(n) for n in re.findall(r'num_failures\\?"?: ?(\d+)', state)]
    assert failures and max(failures) >= 1, f"no trial was retried (on the second node at the kill: {workers})"
