"""The "Estimator" section: how the run estimated each trial's accuracy (``search.estimator``) and what it cost,
from the records' ``estimate_seconds`` / ``estimate_cpu_seconds``; for the ``supernet`` estimator also the
supernets the run trained once (``RUN/estimator/supernet/*/summary.json``, written by
``scalesearch.search.estimators.supernet``) and the CPU-seconds per candidate with their training amortised over
the run's estimates. Nothing is timed here."""

from __future__ import annotations

import json
import statistics

from scalesearch.report.doc import Document
from scalesearch.report.runs import Run

WHAT = {"train": "one proxy training per trial (the backbone fine-tuned)",
        "cached": "one proxy training per trial on the frozen backbone's cached features",
        "supernet": "a sub-network of a weight-sharing supernet per trial: extracted, batch-norm statistics "
                    "re-estimated, COCO-evaluated (no training per trial)"}


def supernets(run: Run) -> list[dict]:
    """The run's supernet summaries, by topology (and resolution); [] when it trained none (or the files are not
    there)."""
    found = []
    for path in sorted((run.path / "estimator" / "supernet").glob("*/summary.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(found, key=lambda s: (str(s.get("topology")), s.get("resolution") or 0))


def _name(summary: dict) -> str:
    """A supernet's row label: its topology, and its resolution when it is a per-resolution one."""
    resolution = summary.get("resolution")
    return f"{summary.get('topology')}" + (f" {resolution} px" if resolution else "")


def add_section(doc: Document, run: Run) -> None:
    """The section, when the records say which estimator ran and how long its estimates took."""
    timed = [r for r in run.records if r.get("estimate_cpu_seconds") is not None]
    names = sorted({str(r.get("estimator")) for r in timed if r.get("estimator")})
    if not timed or not names:
        return
    doc.heading(2, "Estimator")
    cpu = statistics.median(r.estimate_cpu_seconds for r in timed)
    wall = statistics.median(r.estimate_seconds for r in timed if r.get("estimate_seconds") is not None)
    what = "; ".join(f"`{n}`: {WHAT.get(n, n)}" for n in names)
    doc.para(f"Estimator (`search.estimator`) {what}. {len(timed)} trial(s) estimated: median {cpu:.2f} CPU-s "
             f"({wall:.2f} s wall) per estimate, {3600 / wall:,.0f} estimates per hour on one worker.")
    found = supernets(run) if "supernet" in names else []
    if not found:
        return
    doc.table(["supernet (topology)", "sub-networks", "sandwich steps", "wall", "CPU-s", "final loss"],
              [[_name(s), f"{s.get('sub_networks', 0):,}", s.get("steps"),
                f"{s.get('seconds', 0) / 60:.1f} min", f"{s.get('cpu_seconds', 0):,.0f}",
                f"{s['final_loss']:.3f}" if s.get("final_loss") is not None else "-"] for s in found])
    training = sum(s.get("cpu_seconds") or 0 for s in found)
    total = training + sum(r.estimate_cpu_seconds for r in timed)
    doc.para(f"Supernet training: {training / 3600:.2f} CPU-hours ({sum(s.get('seconds') or 0 for s in found) / 60:.0f} "
             f"min wall) for {len(found)} supernet(s) holding {sum(s.get('sub_networks') or 0 for s in found):,} "
             f"sub-networks, once per run. Per candidate, training amortised over the {len(timed)} estimates: "
             f"{total / len(timed):.1f} CPU-s. Inherited mAP only chooses candidates: how well it ranks against "
             f"training alone is measured in `reports/benchmarks/supernet.md`, and the points that matter are "
             f"retrained alone (`scalesearch fidelity`).")
