"""Checkpoints: a spec (plain dict), the weights, and plain-data info (class names, metrics).

Everything stored is a tensor, a number, a string or a list/dict of them, so a checkpoint loads with
``torch.load(..., weights_only=True)``: opening one never runs pickled code.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scalesearch.errors import UserError
from scalesearch.spec import DetectorSpec

FORMAT = "scalesearch-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, model: nn.Module, spec: DetectorSpec, info: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights with ``spec`` and ``info`` (JSON-compatible: e.g. category names, metrics)."""
    info = json.loads(json.dumps(info or {}))  # plain data only; fails here, not at load time
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "version": VERSION, "spec": spec.to_dict(), "info": info, "state_dict": state}, path)
    return path


def _read(path: Path, device: str) -> Any:
    """``torch.load`` with ``weights_only``; a foreign or corrupt file is a one-line ``UserError``."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        why = ("it holds pickled Python objects, which are never loaded (a checkpoint holds tensors and plain data)"
               if "Unsupported global" in str(exc) else "it is not a file torch.save wrote")
    except Exception:  # torch raises many types for a corrupt or foreign file; its messages run to many lines
        why = "it is not a file torch.save wrote"
    raise UserError(f"checkpoint {path}: must be a scalesearch checkpoint (written by `scalesearch train --save`), "
                    f"but {why}")


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, DetectorSpec, dict[str, Any]]:
    """Rebuild the detector of a checkpoint: ``(model in eval mode, spec, info)``."""
    from scalesearch.model import build_detector

    path = Path(path)
    if not path.is_file():
        found = "it is a folder" if path.is_dir() else "it was not found"
        raise UserError(f"checkpoint {path}: must be a file written by `scalesearch train --save`, but {found}")
    data = _read(path, device)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"checkpoint {path}: must be a scalesearch checkpoint, but its format is not {FORMAT!r}")
    spec = DetectorSpec.from_dict(data["spec"])
    model = build_detector(spec, weights=False)  # the checkpoint holds every weight
    model.load_state_dict(data["state_dict"])
    return model.to(device).eval(), spec, data["info"]
