"""Ray Tune on a real two-node Ray cluster on loopback (``ray start --head`` + a second node joining it): the
study reaches it through ``search.ray.address``, trials run on both nodes (recorded per trial), and a driver
killed mid-study is restored by rerunning ``scalesearch run`` (``Tuner.restore``) to exactly N trials. Both nodes
listen on 127.0.0.1 only (Ray runs any job that reaches it, without authentication by default).

Real tiny training (128 px, phi -3): about a minute on 2 cores with both nodes' start-up."""

from __future__ import annotations

import json
import os
import re
import types
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import records_json, tiny_study
from servers import need_module, unavailable
from test_ray_backend import assert_loopback_only, needs_proc, process_tree

ray = need_module("ray", "pip install -e '.[test]' installs it")

# Ray's single-machine mode: a node given 127.0.0.1 keeps it (otherwise Ray swaps in the interface address and
# its processes listen on every interface), and drivers reach 127.0.0.1 as given. Every process of the cluster
# and every driver runs with it.
SINGLE_MACHINE = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                  # A token left in ~/.ray by another Ray must not switch the head to token authentication that
                  # the second node and the drivers do not carry.
                  "RAY_AUTH_MODE": "disabled"}

# `ray start --address` refuses to start a node in single-machine mode, so the second node is started as
# `ray start --block` starts one (and as ray.cluster_utils.Cluster.add_node does): a Node on 127.0.0.1 that lives
# until SIGTERM (which stops its processes too).
SECOND_NODE = """
import signal, sys
from ray._private.node import Node
from ray._private.parameter import RayParams
address, agent, agent_grpc, metrics, runtime_env = sys.argv[1:]
Node(RayParams(gcs_address=address, node_ip_address="127.0.0.1", num_cpus=1,
               dashboard_agent_listen_port=int(agent), metrics_agent_port=int(agent_grpc),
               metrics_export_port=int(metrics), runtime_env_agent_port=int(runtime_env)),
     head=False, shutdown_at_exit=True, spawn_reaper=True)
while True:
    signal.pause()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():  # noqa: C901 - start, wait, stop
    """A head node and a second node, one CPU each, on 127.0.0.1; stopped (both) at the end. Each runs in the
    foreground in a process group of its own, so a test can kill one alone and every Ray process of the cluster
    descends from one of the two."""
    command = Path(sys.executable).with_name("ray")
    if not command.is_file():
        unavailable(f"the ray command is not installed beside {sys.executable}: pip install -e '.[test]' installs it")
    port = _free_port()
    previous = {name: os.environ.get(name) for name in SINGLE_MACHINE}
    os.environ.update(SINGLE_MACHINE)  # the drivers the tests start inherit it
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # A folder of the cluster's own (short: Ray's socket paths live under it): `ray start` records the cluster
    # there, not in /tmp/ray where a `ray.init()` elsewhere on the machine would find it.
    temp_dir = tempfile.mkdtemp(prefix="ray")

    def own_ports() -> list[str]:  # two nodes on one host must not share the per-node agents' default ports
        return [str(_free_port()) for _ in range(4)]

    head = subprocess.Popen([str(command), "start", "--head", "--block", f"--port={port}",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false", f"--temp-dir={temp_dir}",
                             "--num-cpus=1", "--disable-usage-stats",
                             *(f"--{flag}={value}" for flag, value in zip(
                                 ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
                                  "runtime-env-agent-port"), own_ports()))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    second = None
    try:
        deadline = time.time() + 90
        while time.time() < deadline and head.poll() is None and not _accepts(port):
            time.sleep(0.2)
        while time.time() < deadline and head.poll() is None and _alive(address) < 1:
            time.sleep(0.5)
        assert _alive(address) == 1, f"the Ray head did not start (exit status {head.poll()})"
        second = subprocess.Popen([sys.executable, "-c", SECOND_NODE, address, *own_ports()],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                  start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline and second.poll() is None and _alive(address) < 2:
            time.sleep(0.5)
        assert _alive(address) == 2, f"the second Ray node did not join (exit status {second.poll()})"
        yield types.SimpleNamespace(address=address, head=head, second=second)
    finally:
        started = [p for p in (head, second) if p is not None]
        left = {pid: _started_at(pid) for pid in process_tree(*(p.pid for p in started))}
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in started:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        for pid, started_at in left.items():  # what of the cluster outlived its node (the same process: not a reuse)
            if started_at is not None and _started_at(pid) == started_at:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(temp_dir, ignore_errors=True)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _started_at(pid: int) -> str | None:
    """The start time of process ``pid`` (field 22 of /proc/PID/stat); None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _nodes(address: str) -> list[dict]:
    """The cluster's nodes as ``ray.nodes()`` lists them, seen by a driver of its own ([] if none answers)."""
    try:
        out = subprocess.run([sys.executable, "-c", "import json, ray, sys; ray.init(address=sys.argv[1], "
                              "logging_level='ERROR', log_to_driver=False); print(json.dumps([{k: n[k] for k in "
                              "('NodeManagerAddress', 'Alive')} for n in ray.nodes()]))", address],
                             capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return []
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else []


def _alive(address: str) -> int:
    return sum(node["Alive"] for node in _nodes(address))


@needs_proc
def test_every_node_listens_on_loopback_only(cluster):
    nodes = [n for n in _nodes(cluster.address) if n["Alive"]]
    assert len(nodes) == 2 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}, nodes
    for node in (cluster.head, cluster.second):
        assert_loopback_only(process_tree(node.pid))


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
