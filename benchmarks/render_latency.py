"""The page and headline of the ``latency`` benchmark record (``bench_latency.py``), registered in
``render.py``'s RENDERERS / HEADLINES. ``render``'s helpers are imported at call time: ``render`` imports this
module at its end."""

from __future__ import annotations

from scalesearch.records import machine_cores

TAU_TARGET, CV_TARGET = 0.9, 0.05


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _settings(rec: dict) -> str:
    m = rec.get("latency_machine") or {}
    return (f"{rec['runtime']} eager, batch {rec['batch']}, {rec['threads']} thread(s), {rec['warmup']} warm-up + "
            f"{rec['runs']} timed runs per part, {m.get('cpu', '?')} ({machine_cores(m) or '?'} cores), torch "
            f"{m.get('torch', '?')}, onnxruntime {m.get('onnxruntime') or 'not installed'}")


def render_latency(rec: dict) -> str:
    from render import benchmark_page

    t, f = rec["passes_kendall"], rec["flops_kendall"]
    body = [f"{rec['n_specs']} specs drawn with seed {rec['seed']} from the search spaces' axes (every topology "
            "and BiFPN-family members in turn, fusion, phi in [-3, 0], 128-512 px, 3 classes), each measured in two "
            f"full passes by `scalesearch.measure.latency.measure_latency`: {_settings(rec)}. Latency = median of the timed "
            "totals (network + decode + NMS); CV = std / mean of one pass's timed totals.", "",
            f"- passes agree: Kendall tau {t['tau']:.3f} (p {t['p']:.2g}, n {t['n']}; target >= {TAU_TARGET}: "
            f"{_met(t['tau'] >= TAU_TARGET)})",
            f"- median CV {100 * rec['median_cv']:.2f} % (largest {100 * rec['max_cv']:.2f} %; target <= "
            f"{100 * CV_TARGET:g} %: {_met(rec['median_cv'] <= CV_TARGET)}); median difference between the passes' "
            f"medians {100 * rec['median_pass_difference']:.2f} %",
            f"- FLOPs vs latency: Kendall tau {f['tau']:.3f} (p {f['p']:.2g}); FLOPs vs network latency only "
            f"{rec['flops_network_kendall']['tau']:.3f}", "",
            "| spec | FLOPs | pass 1 ms (IQR, CV) | pass 2 ms (IQR, CV) | network ms | post ms | NMS input |",
            "|---|---|---|---|---|---|---|"]
    for r in sorted(rec["specs"], key=lambda r: r["passes"][0]["total_ms"]):
        a, b = r["passes"][0], r["passes"][1]
        body.append(f"| {r['label']} | {r['flops'] / 1e9:.3f} G | {a['total_ms']:.2f} ({a['iqr_ms']:.2f}, "
                    f"{100 * a['cv']:.1f} %) | {b['total_ms']:.2f} ({b['iqr_ms']:.2f}, {100 * b['cv']:.1f} %) | "
                    f"{a['network_ms']:.2f} | {a['post_ms']:.2f} | {a['candidates']} |")
    body += ["", "## ONNX Runtime vs torch eager (same protocol, 90 classes)", "",
             "| preset | torch total ms | onnxruntime total ms | ratio total | torch network ms | onnxruntime "
             "network ms | ratio network |", "|---|---|---|---|---|---|---|"]
    for name, r in rec["runtimes"].items():
        body.append(f"| {name} | {r['torch']['total_ms']:.2f} | {r['onnxruntime']['total_ms']:.2f} | "
                    f"{r['ratio_total']:.3f} | {r['torch']['network_ms']:.2f} | {r['onnxruntime']['network_ms']:.2f} | "
                    f"{r['ratio_network']:.3f} |")
    body += ["", "Post-processing (decode + NMS) runs in torch for both runtimes, on the runtime's own outputs."]
    return benchmark_page(rec, "latency", body)


def headline_latency(rec: dict) -> list[str]:
    t = rec["passes_kendall"]["tau"]
    out = [f"{rec['n_specs']} specs, two passes: Kendall tau {t:.3f} ({_met(t >= TAU_TARGET)}), median CV "
           f"{100 * rec['median_cv']:.2f} % ({_met(rec['median_cv'] <= CV_TARGET)}); FLOPs vs latency tau "
           f"{rec['flops_kendall']['tau']:.3f}"]
    out += [f"{name}: onnxruntime / torch eager total {r['ratio_total']:.3f} ({r['onnxruntime']['total_ms']:.1f} vs "
            f"{r['torch']['total_ms']:.1f} ms)" for name, r in rec["runtimes"].items()]
    return out
