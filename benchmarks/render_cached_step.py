"""The page and headline of the ``cached_step`` benchmark record (``bench_cached_step.py``), registered in
``render.py``'s RENDERERS / HEADLINES. ``render``'s helpers are imported at call time."""

from __future__ import annotations

ARM_TEXT = {"cached": "cached frozen backbone (features read from the cache)",
            "frozen": "live frozen backbone (forward every step, no gradient)",
            "finetuned": "fine-tuned backbone (the whole detector trains)"}
TARGET = 3.0  # issue 23: cached >= 3x faster per step than fine-tuning, on 2 cores


def render_cached_step(rec: dict) -> str:
    from render import benchmark_page

    spec, cache, arms = rec["spec"], rec["cache"], rec["arms"]
    body = [f"One detector ({spec.get('name') or spec['backbone']}: {spec['backbone']} with its package weights, "
            f"{spec['topology']} {spec['fpn_channels']} x {spec['fpn_repeats']}, heads x {spec['head_repeats']}) at "
            f"{rec['resolution']} px, batch {rec['batch_size']}, {rec['threads']} torch threads, trained by the same "
            f"loop and recipe on `{rec['data']}`. A step is timed from one loss call to the next (loading, forward, "
            f"backward, optimiser, EMA) after {rec['warmup']} untimed steps; {rec['steps']} timed steps per arm and "
            f"round, the arms alternating over {rec['rounds']} rounds; the median step of each arm.", "",
            "| arm | s / step | CPU s / step | images / s | trained params | round medians (s) |",
            "|---|---|---|---|---|---|"]
    for name, arm in arms.items():
        body.append(f"| {ARM_TEXT.get(name, name)} | **{arm['step_seconds']:.3f}** | {arm['cpu_seconds_per_step']:.3f} | "
                    f"{arm['images_per_second']:.1f} | {arm['trained_params']:,} | "
                    f"{', '.join(f'{m:.3f}' for m in arm['round_medians'])} |")
    speed = rec["speedup"]
    met = "met" if speed["finetuned_over_cached"] >= TARGET else "NOT met"
    body += ["", f"Fine-tuned / cached: **{speed['finetuned_over_cached']:.2f}x** per step (target >= {TARGET:g}x: "
             f"{met}); live frozen / cached: {speed['frozen_over_cached']:.2f}x. Building the cache once: "
             f"{cache['rows']} rows ({rec['train_images']} train images x flip states + val) = "
             f"{cache['bytes'] / 2**20:.1f} MiB {cache['dtype']} in {cache['build_seconds']:.1f} s."]
    return benchmark_page(rec, "cached_step", body)


def headline_cached_step(rec: dict) -> list[str]:
    arms, speed = rec["arms"], rec["speedup"]
    return [f"s/step at {rec['resolution']} px, batch {rec['batch_size']}: cached {arms['cached']['step_seconds']:.3f}, "
            f"live frozen {arms['frozen']['step_seconds']:.3f}, fine-tuned {arms['finetuned']['step_seconds']:.3f} "
            f"(fine-tuned / cached {speed['finetuned_over_cached']:.2f}x)"]
