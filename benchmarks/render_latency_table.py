"""The page and headline of the ``latency_table`` benchmark record (``bench_latency_table.py``), registered in
``render.py``'s RENDERERS / HEADLINES. ``render``'s helpers are imported at call time: ``render`` imports this
module at its end. Every figure shown is in the record."""

from __future__ import annotations

from scalesearch.records import machine_cores


def _settings(rec: dict) -> str:
    m = rec.get("latency_machine") or {}
    return (f"{rec['runtime']} eager, batch {rec['batch']}, {rec['threads']} thread(s), {rec['warmup']} warm-up + "
            f"{rec['runs']} timed runs, {m.get('cpu', '?')} ({machine_cores(m) or '?'} cores), torch "
            f"{m.get('torch', '?')}")


def _tau(k: dict) -> str:
    return f"{k['tau']:.3f} (95 % interval {k['low']:.3f} to {k['high']:.3f}, p {k['p']:.2g}, n {k['n']})"


def _family(rec: dict) -> str:
    if not rec["family"]:
        return "the 1944-graph BiFPN family left out of the space (`--no-family`)"
    return (f"the 1944-graph BiFPN family in the space: {rec['family_specs']} of {rec['n_specs']} specs drew one of "
            "its graphs, and a family graph shares no cell entry with another graph")


def render_latency_table(rec: dict) -> str:
    from render import benchmark_page

    per_prediction = rec["prediction_seconds"]
    body = [f"{rec['n_specs']} specs drawn with seed {rec['seed']} (Optuna's random sampler) from the space of "
            f"`{rec['study']}`, {_family(rec)}. Each was predicted by the per-block table "
            "(`scalesearch.measure.latency_table`, from a fresh cache) and measured by the protocol "
            f"(`scalesearch.measure.latency.measure_latency`), both with {_settings(rec)}.", "",
            f"- table vs protocol, total latency: Kendall tau {_tau(rec['kendall'])}; FLOPs vs protocol: "
            f"{_tau(rec['flops_kendall'])}",
            f"- mean absolute error {rec['mape_pct']:.1f} % of the measured total (network {rec['mape_network_pct']:.1f} "
            f"%, post-processing {rec['mape_post_pct']:.1f} %); median signed error {rec['median_error_pct']:+.1f} %",
            f"- building the table: {rec['build_seconds']:.1f} s for {rec['entries']} entries (every block timing of "
            f"the {rec['n_specs']} specs); a prediction once built: {1000 * per_prediction:.2f} ms; a protocol "
            f"measurement: {rec['protocol_seconds']:.1f} s ({rec['protocol_seconds'] / per_prediction:,.0f} x the "
            "prediction)", "",
            "| spec | FLOPs | measured ms (IQR) | table ms | error | network ms measured / table | post ms "
            "measured / table | table s | protocol s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rec["specs"], key=lambda r: r["measured"]["total_ms"]):
        m, t = r["measured"], r["predicted"]
        body.append(f"| {r['label']} | {r['flops'] / 1e9:.3f} G | {m['total_ms']:.2f} ({m['iqr_ms']:.2f}) | "
                    f"{t['total_ms']:.2f} | {r['error_pct']:+.1f} % | {m['network_ms']:.2f} / {t['network_ms']:.2f} | "
                    f"{m['post_ms']:.2f} / {t['post_ms']:.2f} | {r['table_seconds']:.1f} | {r['protocol_seconds']:.1f} |")
    body += ["", "Table s: the seconds the spec's prediction took, timing the blocks no earlier spec had timed "
             "(near 0 when every block was in the table already). In a study with `latency.table: true` every point of the final "
             "front is measured by the protocol after the search; the table only ranks the trials before it."]
    return benchmark_page(rec, "latency_table", body)


def headline_latency_table(rec: dict) -> list[str]:
    k = rec["kendall"]
    return [f"{rec['n_specs']} specs: table vs protocol Kendall tau {k['tau']:.3f} [{k['low']:.3f}, {k['high']:.3f}] "
            f"(FLOPs {rec['flops_kendall']['tau']:.3f}), mean error {rec['mape_pct']:.1f} %; a prediction "
            f"{1000 * rec['prediction_seconds']:.2f} ms vs a measurement {rec['protocol_seconds']:.1f} s"]
