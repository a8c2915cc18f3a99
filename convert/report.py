"""The conversion report as a table (stdout and conversion_report.md)."""
from __future__ import annotations

from .validate import BATCH


def markdown(report: dict) -> str:
    src = report["source_model"]
    lines = [
        "# Conversion report",
        "",
        f"Source: `{src['file']}` ({src['arch']}), Keras accuracy {src['keras_accuracy']:.2%} on the "
        f"10,000 MNIST test digits. Gate: drop ≤ {report['gate']['max_drop_pp']} pp, agreement ≥ "
        f"{report['gate']['min_agreement_pct']} %, accuracy ≥ {report['gate'].get('min_accuracy_pct') or '-'} %. Calibration: {report['calibration']['images']} "
        f"{report['calibration']['from']} images. Latency: 1 thread, {next(iter(report['models'].values()), {}).get('backend', '?')}.",
        "",
        "| mode | passed | tflite acc | drop (pp) | agreement | mean / max abs prob diff | size (KB) "
        f"| µs/image batch 1 | µs/image batch {BATCH} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, r in report["models"].items():
        lines.append(
            f"| {mode} | {'yes' if r['passed'] else 'NO: ' + '; '.join(r['failures'])} | "
            f"{r['tflite_accuracy']:.2%} | {r['drop_pp']:+.2f} | {r['agreement']:.2%} | "
            f"{r['prob_abs_diff_mean']:.2e} / {r['prob_abs_diff_max']:.3f} | {r['size_bytes'] / 1024:.1f} | "
            f"{r['latency_us_batch1']:.1f} | {r[f'latency_us_batch{BATCH}']:.1f} |"
        )
    lines += ["", "Per-class accuracy change (pp, tflite − Keras):", "",
              "| mode | " + " | ".join(str(c) for c in range(10)) + " |",
              "| --- |" + " --- |" * 10]
    for mode, r in report["models"].items():
        lines.append(f"| {mode} | " + " | ".join(f"{v:+.2f}" for v in r["per_class_change_pp"].values()) + " |")
    return "\n".join(lines) + "\n"
