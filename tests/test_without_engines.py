"""The study and report path runs where torch, timm, Optuna and Ray cannot be imported, and the command line
starts fast.

A ``sitecustomize`` on ``PYTHONPATH`` puts a finder first on ``sys.meta_path`` that refuses those names, so
every import of them fails, inside functions too: this is what runs, where ``tests/test_imports.py`` checks what
the source says.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "timm", "optuna", "ray", "torchvision", "fvcore")
BLOCKER = f'''import sys


class _Refuse:
    """Finds nothing it may load: importing {BLOCKED} raises ModuleNotFoundError."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (refused by this test)", name=name)
        return None


sys.meta_path.insert(0, _Refuse())
'''


@pytest.fixture(scope="module")
def no_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for a subprocess in which importing any of ``BLOCKED`` fails."""
    folder = tmp_path_factory.mktemp("no_engines")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}


def _run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_the_engines_are_refused(no_engines):
    for name in BLOCKED:
        result = _run(["-c", f"import {name}"], no_engines)
        assert result.returncode == 1 and "refused by this test" in result.stderr, name


def test_every_study_validates_without_engines(no_engines):
    code = ("from pathlib import Path; from scalesearch.config import load_study; "
            "studies = sorted(Path('studies').glob('*.yaml')); [load_study(p) for p in studies]; print(len(studies))")
    result = _run(["-c", code], no_engines)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(list((ROOT / "studies").glob("*.yaml"))) > 0


@pytest.mark.parametrize("run", ["quickstart", "compound_coefficients_bccd"])
def test_report_of_a_committed_run_without_engines(no_engines, tmp_path, run):
    """``compound_coefficients_bccd`` holds fidelity and extrapolation records: the record modules are read."""
    folder = shutil.copytree(ROOT / "reports" / "runs" / run, tmp_path / run)
    result = _run(["-m", "scalesearch", "report", str(folder), "--out", str(tmp_path / "report")], no_engines)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report" / "report.md").is_file()


def _cpu_seconds(args: list[str], env: dict[str, str]) -> float:
    """User + system CPU time of one child process (``RUSAGE_CHILDREN`` grows by exactly what it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = _run(args, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0, result.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.parametrize("args", [["--help"], ["trials", "reports/runs/quickstart"]], ids=["help", "trials"])
def test_the_command_line_starts_fast_without_engines(no_engines, args):
    """CPU time, not wall time: on a 2-core machine shared with a benchmark the wall clock measures the queue.
    The fastest of three runs, so that one cold page cache does not decide. The bound is 0.2 s on a machine whose
    bare interpreter starts in ~0.03 s CPU, and 6 bare starts on a slower one (machines differ by 2-3x between
    sessions: one measured 0.07 s bare, 0.26 s for --help); importing torch alone costs over a second either way."""
    seconds = min(_cpu_seconds(["-m", "scalesearch", *args], no_engines) for _ in range(3))
    bare = min(_cpu_seconds(["-c", "pass"], no_engines) for _ in range(3))
    assert seconds < max(0.2, 6 * bare), (seconds, bare)
