"""Ray Tune backend on a local Ray instance (2 CPUs): records in the Optuna schema, resume by restore; the
local Ray listens on loopback only (node address 127.0.0.1, no socket on another address).

One real (tiny) study: ~25 s on 2 cores, Ray start-up included.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import pytest

from servers import TEST_EXTRAS, need_module

from conftest import tiny_study
from scalesearch.cli import main
from conftest import records_json as load_records
from test_objective import SCHEMA


@pytest.fixture
def local_ray():
    need_module("ray", TEST_EXTRAS)
    from scalesearch.search.ray_backend import start_local_ray

    start_local_ray(num_cpus=2)
    yield
    import ray

    ray.shutdown()


def process_tree(*roots: int) -> set[int]:
    """``roots`` and every process descending from them (parents read from /proc)."""
    parents = {}
    for proc in Path("/proc").iterdir():
        try:  # after "pid (comm)": state, ppid
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grown = set(roots), True
    while grown:
        new = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= new
        grown = bool(new)
    return tree


def _hex_address(text: str) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in host order) -> text, port dropped."""
    raw = bytes.fromhex(text.split(":")[0])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    return str(ipaddress.ip_address(words))


def listening_sockets(pids: set[int]) -> list[tuple[int, str, str]]:
    """(pid, process name, address) of every TCP socket that ``pids`` listen on (from /proc, as ``ss -ltnp``)."""
    owners = {}
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[target[len("socket:["):-1]] = (pid, name)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owners:  # 0A: LISTEN
                found.append((*owners[fields[9]], _hex_address(fields[1])))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def assert_loopback_only(pids: set[int]) -> None:
    """The Ray processes among ``pids`` listen, and only on loopback (not 0.0.0.0, ::, nor an interface)."""
    sockets = listening_sockets(pids)
    names = {name.rsplit("/", 1)[-1] for _, name, _ in sockets}
    assert {"gcs_server", "raylet"} & names, f"no Ray socket found among {sorted(pids)}: {sockets}"
    exposed = [s for s in sockets if not is_loopback(s[2])]
    assert not exposed, f"Ray listens beyond loopback: {exposed}"


def assert_local_ray_on_loopback() -> None:
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert nodes and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}, nodes
    assert_loopback_only(process_tree(os.getpid()))


needs_proc = pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads sockets from Linux's /proc")


@needs_proc
def test_local_ray_listens_on_loopback_only(local_ray):
    assert_local_ray_on_loopback()


@needs_proc
def test_the_backend_starts_its_own_ray_on_loopback_only(tmp_path):
    """No Ray running and no ``search.ray.address``: ``run_ray`` starts one, on 127.0.0.1 only, then leaves Ray's
    single-machine switch as it found it (a later cluster connection resolves addresses as usual)."""
    ray = need_module("ray", TEST_EXTRAS)
    from ray._private import ray_constants

    assert not ray.is_initialized()
    before = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    study = tiny_study(tmp_path, search={"backend": "ray", "n_trials": 1, "ray": {"num_cpus": 1}},
                       space={"phi": -3.0, "resolution": 128})
    try:
        assert main(["run", str(study), "--quiet"]) == 0
        assert [r["state"] for r in load_records(tmp_path / "run")] == ["complete"]
        assert_local_ray_on_loopback()
        assert (ray_constants.ENABLE_RAY_CLUSTER, os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")) == before
    finally:
        ray.shutdown()


def test_ray_study_records_and_resume(tmp_path, local_ray):
    # phi=-3 at 128 px is 0.075 GFLOPs and phi=-2 is 0.094 (real counts): one point is over budget.
    study = tiny_study(tmp_path, seeds=2, budgets={"flops": "0.08B"},
                       train={"steps": 4, "eval_every": 2},
                       search={"backend": "ray", "n_trials": 4, "sampler": "grid", "workers": 2,
                               "ray": {"asha": True}},
                       space={"phi": [-3.0, -2.0], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    assert [r["number"] for r in records] == [0, 1, 2, 3]
    by_phi = {phi: [r for r in records if r["phi"] == phi] for phi in (-3.0, -2.0)}
    assert [r["seed"] for r in by_phi[-3.0]] == [0, 1] and [r["seed"] for r in by_phi[-2.0]] == [0, 1]
    assert {r["state"] for r in by_phi[-2.0]} == {"infeasible"}
    assert {r["state"] for r in by_phi[-3.0]} <= {"complete", "pruned"}
    for record in records:
        assert set(SCHEMA) <= set(record) and record["flops"] == (75_372_888 if record["phi"] == -3.0 else 93_802_816)
    assert main(["run", str(study), "--quiet"]) == 0  # restores: nothing new to run
    assert load_records(tmp_path / "run") == records


def test_asha_stops_trials_with_fewer_steps(tmp_path, local_ray):
    study = tiny_study(tmp_path, train={"steps": 8, "eval_every": 2},
                       search={"backend": "ray", "n_trials": 8, "sampler": "random", "workers": 2,
                               "ray": {"asha": True, "grace_period": 1}},
                       space={"phi": {"low": -3.0, "high": -2.0}, "topology": ["fpn", "bifpn"], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    stopped = [r for r in records if r["state"] == "pruned"]
    complete = [r for r in records if r["state"] == "complete"]
    assert len(records) == 8 and stopped and complete, [r["state"] for r in records]
    for record in stopped:  # stopped at a rung: fewer steps than the full budget
        assert max(int(k) for k in record["intermediate"]) < 8 and "ASHA" in record["reason"]
    assert all(r["steps"] == 8 for r in complete)


def test_budget_constraints_reach_the_ray_sampler(tmp_path, local_ray):
    from ray.tune.search.optuna import OptunaSearch

    # phi=-3 at 128 px is 0.075 GFLOPs, phi=-2 0.094: one point over the budget
    study = tiny_study(tmp_path, budgets={"flops": "0.08B"}, train={"steps": 2},
                       search={"backend": "ray", "n_trials": 4, "sampler": "tpe", "workers": 2},
                       space={"phi": [-3.0, -2.0], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    infeasible = [r for r in records if r["state"] == "infeasible"]
    assert infeasible and all(r["steps"] is None for r in infeasible)  # never trained
    (state,) = list((tmp_path / "run" / "ray").glob("searcher-state-*.pkl"))
    searcher = OptunaSearch()
    searcher.restore(str(state))
    told = {t.params["phi"]: t.system_attrs for t in searcher._ot_study.trials if t.state.is_finished()}
    constraint = {phi: attrs["constraints:flops"] for phi, attrs in told.items()}
    assert constraint[-2.0] == pytest.approx(93_802_816 / 80e6 - 1.0) and constraint[-3.0] < 0
