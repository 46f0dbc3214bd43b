"""The page and headline of the ``cost_space`` record (``bench_cost_space.py``), registered in ``render.py``.
``render``'s helpers are imported at call time. Every figure shown is in the record."""

from __future__ import annotations


def render_cost_space(rec: dict) -> str:
    from render import benchmark_page

    body = [f"Specs of the space of `{rec['study']}` ({rec['space_size']:,} points), counted in one process on "
            f"{rec['threads']} threads by each method in turn (same specs, same order). `sparse`: distinct points of the "
            "whole space (few share a shape, the spec without its repeats); `dense`: every repeat pair of a few shapes.",
            "", "| draw | specs | shapes | one trace per spec | repeats extrapolated | speed-up | counts equal |",
            "|---|---|---|---|---|---|---|"]
    for draw, r in rec["results"].items():
        old, new = r["methods"].values()
        body.append(f"| {draw} | {r['specs']} | {r['shapes']} | {old['seconds']:.1f} s ({old['per_spec']:.3f} s/spec) | "
                    f"{new['seconds']:.1f} s ({new['per_spec']:.3f} s/spec) | {r['speedup']:.2f}x | "
                    f"{'yes' if r['equal'] else '**no**'} |")
    return benchmark_page(rec, "cost_space", body)


def headline_cost_space(rec: dict) -> list[str]:
    return [f"cost_space: counting {draw} draws {r['speedup']:.2f}x faster with repeats extrapolated "
            f"(counts equal: {r['equal']})" for draw, r in rec["results"].items()]
