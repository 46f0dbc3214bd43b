"""The released families counted: D0..D7x beside the paper's Table 2 and scaling rule, and
EfficientDet-Lite0..Lite4 beside effdet and the published COCO AP.

Compute first (``build_rows``, ``build_lite_rows``), then render (``render_markdown``,
``render_lite_markdown``, and the reports with provenance ``d_report`` / ``lite_report``). Each D row has
the released config, our exact params and fvcore FLOPs, the paper's figures with the relative
difference, and the paper's continuous rule at the same phi, so the presets' deviations from the rule show.
"""

from __future__ import annotations

import resource
import sys
from datetime import datetime, timezone
from typing import Any

from scalesearch.machine import describe

# Paper Table 2 (arXiv 1911.09070 v7): params, FLOPs (multiply-adds).
PAPER_TABLE2: dict[str, tuple[float, float]] = {
    "d0": (3.9e6, 2.5e9), "d1": (6.6e6, 6.1e9), "d2": (8.1e6, 11e9), "d3": (12e6, 25e9),
    "d4": (21e6, 55e9), "d5": (34e6, 135e9), "d6": (52e6, 226e9), "d7": (52e6, 325e9),
    "d7x": (77e6, 410e9),
}
# EfficientDet-Lite: effdet 0.4.1 `tf_efficientdet_lite*` params (90 classes) and the TFLite Model Maker COCO AP.
LITE_REFERENCE: dict[str, tuple[int, float]] = {
    "lite0": (3_243_470, 25.69), "lite1": (4_248_318, 30.55), "lite2": (5_252_334, 33.97),
    "lite3": (8_350_862, 37.70), "lite3x": (9_280_862, float("nan")), "lite4": (15_130_894, 41.96),
}
RULE_KEYS = ("width_multiplier", "depth_multiplier", "resolution", "fpn_channels", "fpn_repeats", "head_repeats")


def build_rows(topology: str | None = None, fusion: str | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """One dict per preset: config, counts, paper figures, relative differences, rule values."""
    from tqdm import tqdm

    from scalesearch.measure.cost import count_cost
    from scalesearch.scaling import PAPER_RULE, PRESET_PHI, PRESETS

    overrides = {k: v for k, v in (("topology", topology), ("fusion", fusion)) if v is not None}
    rows = []
    for name in tqdm(PRESETS, desc="counting D0..D7x", disable=not progress, file=sys.stderr):
        spec = PRESETS[name].replace(**overrides)
        cost = count_cost(spec)
        phi = PRESET_PHI[name]
        paper_params, paper_flops = PAPER_TABLE2[name]
        rule = PAPER_RULE.values(phi, spec.max_level) if phi is not None else None
        rows.append({
            "name": name.upper(), "phi": phi, "resolution": spec.resolution, "backbone": spec.backbone,
            "width_multiplier": spec.width_multiplier, "depth_multiplier": spec.depth_multiplier,
            "fpn_channels": spec.fpn_channels, "fpn_repeats": spec.fpn_repeats, "head_repeats": spec.head_repeats,
            "topology": spec.topology, "fusion": spec.fusion, "max_level": spec.max_level,
            "params": cost.params, "flops": cost.flops, "by_part": cost.by_part,
            "paper_params": paper_params, "paper_flops": paper_flops,
            "params_rel_diff": cost.params / paper_params - 1, "flops_rel_diff": cost.flops / paper_flops - 1,
            "rule": rule, "deviations": deviations(spec, phi, rule),
        })
    return rows


def build_lite_rows(progress: bool = True) -> list[dict[str, Any]]:
    """One dict per EfficientDet-Lite preset: config, exact params and FLOPs, effdet's params, published AP."""
    from tqdm import tqdm

    from scalesearch.measure.cost import count_cost
    from scalesearch.scaling import LITE_PRESETS

    rows = []
    for name in tqdm(LITE_PRESETS, desc="counting Lite0..Lite4", disable=not progress, file=sys.stderr):
        spec = LITE_PRESETS[name]
        cost = count_cost(spec)
        effdet_params, coco_ap = LITE_REFERENCE[name]
        rows.append({
            "name": name, "resolution": spec.resolution, "backbone": spec.backbone, "fpn_channels": spec.fpn_channels,
            "fpn_repeats": spec.fpn_repeats, "head_repeats": spec.head_repeats, "anchor_scale": spec.anchor_scale,
            "fusion": spec.fusion, "activation": spec.activation, "params": cost.params, "flops": cost.flops,
            "by_part": cost.by_part, "effdet_params": effdet_params, "coco_ap": coco_ap,
        })
    return rows


def render_lite_markdown(rows: list[dict[str, Any]]) -> str:
    """The Lite table as GitHub markdown (FLOPs in billions of multiply-adds)."""
    lines = ["| | R | backbone | W | D_fpn | D_head | anchor scale | params | effdet params | FLOPs | COCO AP (published) |",
             "|" + "---|" * 11]
    for r in rows:
        ap = "–" if r["coco_ap"] != r["coco_ap"] else f"{r['coco_ap']:.2f}"
        lines.append(f"| {r['name']} | {r['resolution']} | {r['backbone']} | {r['fpn_channels']} | {r['fpn_repeats']} "
                     f"| {r['head_repeats']} | {r['anchor_scale']:g} | {r['params']:,} | {r['effdet_params']:,} "
                     f"| {r['flops'] / 1e9:.3f}B | {ap} |")
    return "\n".join(lines) + "\n"


def deviations(spec, phi: int | None, rule: dict[str, Any] | None) -> list[str]:
    """Where a released config leaves the paper's design at its phi (Sec. 4.2: BiFPN with fast
    fusion, P3-P7, anchor scale 4, backbone B_phi; W, D, R by Eq. 1-3)."""
    if rule is None:
        return ["not on the rule (no phi)"]
    out = [f"{k} {getattr(spec, k)} (rule {rule[k]})" for k in RULE_KEYS[2:] if getattr(spec, k) != rule[k]]
    if not spec.backbone.endswith(f"_b{phi}"):
        out.append(f"backbone B{spec.backbone[-1]} (rule B{phi})")
    defaults = {"fusion": "fast", "anchor_scale": 4.0, "max_level": 7}
    out += [f"{k} {getattr(spec, k)} (rule {v})" for k, v in defaults.items() if getattr(spec, k) != v]
    return out


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub markdown (params in millions, FLOPs in billions of multiply-adds).

    "rule" shows the paper's continuous rule at the same phi: R / W / D_fpn / D_head and the
    backbone multipliers width x depth (EfficientNet's beta**phi, alpha**phi)."""
    head = ("| | phi | R | backbone (width x depth) | W | D_fpn | D_head | fusion | params | paper | diff | FLOPs "
            "| paper | diff | rule: R / W / D_fpn / D_head (width x depth) | released config deviates |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        phi = "–" if r["phi"] is None else str(r["phi"])
        rule = r["rule"]
        rule_text = "–" if rule is None else (
            f"{rule['resolution']} / {rule['fpn_channels']} / {rule['fpn_repeats']} / {rule['head_repeats']} "
            f"({rule['width_multiplier']:g} x {rule['depth_multiplier']:g})")
        lines.append(
            f"| {r['name']} | {phi} | {r['resolution']} | {r['backbone']} ({r['width_multiplier']:g} x "
            f"{r['depth_multiplier']:g}) | {r['fpn_channels']} | {r['fpn_repeats']} | {r['head_repeats']} "
            f"| {r['fusion']} | {r['params']:,} | {r['paper_params'] / 1e6:g}M | {r['params_rel_diff']:+.2%} "
            f"| {r['flops'] / 1e9:.3f}B | {r['paper_flops'] / 1e9:g}B | {r['flops_rel_diff']:+.2%} | {rule_text} "
            f"| {'; '.join(r['deviations']) or '–'} |"
        )
    return "\n".join(lines) + "\n"


def d_report(rows: list[dict[str, Any]], command: str, seconds: float) -> str:
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return (
        "# EfficientDet D0..D7x: released configs counted exactly\n\n"
        f"Generated by `{command}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {describe()}; "
        f"run time {seconds:.0f} s, peak RSS {peak_gb:.2f} GB.\n\n"
        "params: 90 classes, equal to effdet 0.4.1's `tf_efficientdet_*`. FLOPs: fvcore multiply-adds per "
        "image at the preset's resolution, counted exactly from traces at 1x and 2x 2**max_level px "
        "(`scalesearch.measure.cost`). Paper: arXiv 1911.09070 v7 Table 2. The rule: W = 64·1.35^φ (multiple of 8), "
        "D_fpn = 3 + φ, D_head = 3 + ⌊φ/3⌋, R = 512 + 128φ, backbone multipliers 1.1^φ / 1.2^φ "
        "(EfficientNet's β, α; the released presets use the B_φ table instead). `--topology` / `--fusion`, "
        "when given, replace every preset's.\n\n" + render_markdown(rows)
    )


def lite_report(rows: list[dict[str, Any]], command: str, seconds: float) -> str:
    return (
        "# EfficientDet-Lite0..Lite4: released configs counted exactly\n\n"
        f"Generated by `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {describe()}; "
        f"run time {seconds:.0f} s.\n\n"
        "params: 90 classes, equal to effdet 0.4.1's `tf_efficientdet_lite*` to the unit (pinned in "
        "tests/test_scaling.py). FLOPs: fvcore multiply-adds per image at the preset's resolution (320 and 448 px "
        "leave P6/P7 uneven: ceil-sized maps, traced directly). All: ReLU6, sum fusion, TF-Lite backbones "
        "(mean = std = 0.5 inputs). COCO AP: the TFLite Model Maker table.\n\n" + render_lite_markdown(rows)
    )
