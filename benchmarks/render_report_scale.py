"""The page and headline of the ``report_scale`` benchmark record (``bench_report_scale.py``), registered in
``render.py``'s RENDERERS / HEADLINES. ``render``'s helpers are imported at call time."""

from __future__ import annotations


def _met(side: dict, target: float) -> str:
    return "met" if side["best_seconds"] < target else "NOT met"


def _side_line(label: str, side: dict, target: float) -> str:
    csv = "-" if side.get("csv_rows") is None else side["csv_rows"]
    return (f"| {label} | {side['commit']} | {side['trials']} | {', '.join(f'{s:.1f}' for s in side['seconds'])} | "
            f"**{side['best_seconds']:.1f}** ({_met(side, target)}) | {side['report_md_kb']:g} | "
            f"{side['report_html_kb']:g} | {side['figures']} | {side['longest_table_rows']} | "
            f"{side['left_out_notes']} | {csv} |")


def render_report_scale(rec: dict) -> str:
    from render import benchmark_page

    target, sides = rec["target_seconds"], rec["sides"]
    body = [(f"`scalesearch report RUN --out DIR` on a fake supernet study of {rec['trials']} trials "
             "(`bench_report_scale.fake_run`: the beat_lite0_bccd space with the BiFPN family, the labelled baseline "
             "EfficientDet-Lite0, duplicates, pruned, infeasible and failed trials, learning curves on about one "
             f"trial in ten; nothing trained), a fresh process each time, {rec['repeats']} time(s) per side. "
             "Readability: the report's size, its figures, the body rows of its longest table, the notes saying rows "
             "were left out, and the rows of `trials.csv` (every trial) beside it."), "",
            (f"| code | commit | trials | wall s | best s (target < {target:g} s) | report.md kB | report.html kB | "
             "figures | longest table (rows) | 'left out' notes | trials.csv rows |"),
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    body += [_side_line(label, side, target) for label, side in sides.items()]
    if "before" in sides and "after" in sides:
        ratio = sides["before"]["best_seconds"] / sides["after"]["best_seconds"]
        body += ["", f"before / after: **{ratio:.1f}x** (best of each side's runs)."]
    return benchmark_page(rec, "report_scale", body)


def headline_report_scale(rec: dict) -> list[str]:
    return [f"{label}: {s['best_seconds']:.1f} s for {s['trials']} trials (target < {rec['target_seconds']:g} s), "
            f"longest table {s['longest_table_rows']} rows" for label, s in rec["sides"].items()]
