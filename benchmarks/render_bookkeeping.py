"""The page and headline of the ``bookkeeping`` benchmark record (``bench_bookkeeping.py``), registered in
``render.py``'s RENDERERS / HEADLINES. ``render``'s helpers are imported at call time."""

from __future__ import annotations

import statistics


def _side_line(label: str, side: dict, target: float) -> str:
    met = "met" if side["ratio"] <= target else "NOT met"
    return (f"| {label} | {side['commit']} | {side['trials']} | {side['wall_seconds']:.0f} | {side['first_ms']:.1f} | "
            f"{side['last_ms']:.1f} | {side['ratio']:.2f}x ({met}) |")


def _deciles(side: dict) -> str:
    ms = side["per_trial_ms"]
    step = max(1, len(ms) // 10)
    return " / ".join(f"{statistics.mean(ms[i:i + step]):.0f}" for i in range(0, len(ms) - step + 1, step))


def render_bookkeeping(rec: dict) -> str:
    from render import benchmark_page

    sides = rec["sides"]
    w, target = rec["window"], rec["target_ratio"]
    body = [f"A study of {rec['trials']} trials (random sampler, one worker, space {rec['space']}) whose proxy "
            "training and cost count are instant fakes, with no zero-cost scores and no latency: each trial's time is "
            "the framework's own bookkeeping (sampling, storage, spec resolution, records, `trials.json`), measured "
            "from one training's start to the next.", "",
            f"| code | commit | trials | wall s | first {w} ms/trial | last {w} ms/trial | last / first "
            f"(target <= {target:g}x) |", "|---|---|---|---|---|---|---|"]
    body += [_side_line(label, side, target) for label, side in sides.items()]
    body += ["", "Mean ms per trial in each tenth of the study:", ""]
    body += [f"- {label}: {_deciles(side)}" for label, side in sides.items()]
    return benchmark_page(rec, "bookkeeping", body)


def headline_bookkeeping(rec: dict) -> list[str]:
    return [f"{label}: {s['first_ms']:.1f} ms/trial over the first {rec['window']} trials, {s['last_ms']:.1f} over "
            f"the last {rec['window']} of {s['trials']} ({s['ratio']:.2f}x)" for label, s in rec["sides"].items()]
