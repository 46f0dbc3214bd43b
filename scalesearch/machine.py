"""What machine a result came from (one description shared by run folders and generated reports), and the
device a command runs on."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError
from scalesearch.records import machine_cores


def proc_field(path: str, key: str) -> str | None:
    """The first ``key: value`` line of a /proc file (Linux), else None."""
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def identity() -> dict[str, Any]:
    """What a measured time depends on: CPU model, cores, Python, torch and onnxruntime versions. The key of
    the latency cache and the machine fields of a latency record; ``machine_info`` is this plus the rest."""
    import torch

    try:
        from importlib.metadata import version

        ort = version("onnxruntime")
    except Exception:  # not installed
        ort = None
    return {"cpu": proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": ort}


def machine_info() -> dict[str, Any]:
    """The one description of a machine in records: ``identity()`` plus memory (GB), platform, host, timm,
    torch threads and the GPU when there is one, as plain JSON-friendly values."""
    import timm
    import torch

    mem_kb = proc_field("/proc/meminfo", "MemTotal")
    return {
        **identity(),
        "memory_gb": round(int(mem_kb.split()[0]) / 2**20) if mem_kb else None,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "timm": timm.__version__,
        "threads": torch.get_num_threads(),
        **({"gpu": torch.cuda.get_device_name(0)} if torch.cuda.is_available() else {}),
    }


def describe(info: dict[str, Any] | None = None) -> str:
    """One line for report headers, e.g. ``Intel Xeon ..., 2 cores, 24 GB RAM, Linux x86_64, Python 3.11.7, ...``."""
    info = info or machine_info()
    memory = f", {info['memory_gb']} GB RAM" if info.get("memory_gb") else ""
    gpu = f", GPU {info['gpu']}" if info.get("gpu") else ""
    return (f"{info['cpu']}, {machine_cores(info)} cores{memory}{gpu}, {platform.system()} {platform.machine()}, "
            f"Python {info['python']}, torch {info['torch']}, timm {info['timm']}, {info['threads']} threads")


def resolve_device(name: str) -> str:
    """``cpu``, ``cuda[:i]`` or ``auto`` (cuda when present); CUDA on a machine without it is a ``UserError``."""
    if name != "cpu" and not name.startswith("cuda") and name != "auto":
        raise UserError(f"--device: must be cpu, cuda[:N] or auto, but got {name!r}")
    if name == "cpu":
        return name
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UserError(f"--device: cuda needs a visible CUDA GPU, but none is available (got {name!r})")
    return name


def portable_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """``path`` as recorded: an absolute path inside ``base`` (the working folder: the repository when commands
    run from it) or beside it (``../shared``) becomes relative to ``base``; one elsewhere keeps only its last two
    parts after ``.../`` (no record names a folder of the machine that made it); a relative path is kept as typed."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        return text
    root = os.path.abspath(os.fspath(base) if base is not None else os.getcwd())
    norm = os.path.normpath(text)
    if os.path.commonpath([norm, os.path.dirname(root)]) == os.path.dirname(root) != "/":
        return os.path.relpath(norm, root)
    return ".../" + "/".join(norm.split("/")[-2:])


def portable_command(argv: list[str] | tuple[str, ...], base: str | os.PathLike | None = None) -> str:
    """A command line for a record: every absolute path in it (an argument, or the value of ``key=value``)
    made relative by ``portable_path``; quoted as a shell would need it."""
    import shlex

    def one(arg: str) -> str:
        key, eq, value = arg.partition("=")
        if eq and os.path.isabs(value) and not os.path.isabs(key):
            return f"{key}={portable_path(value, base)}"
        return portable_path(arg, base) if os.path.isabs(arg) else arg
    return shlex.join(one(str(a)) for a in argv)
