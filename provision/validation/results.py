"""A validation result: the report, its JSON form, and its human summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONFIDENCE", "ValidationReport", "summary_rows"]


@dataclass
class ValidationReport:
    """One validation result; ``passed`` decides the CLI's exit status (5 when false)."""

    benchmark: str
    model: str
    metric: str
    unit: str
    value: float
    target: float | None
    passed: bool
    samples: int
    device: str
    runtime: dict[str, Any]
    model_digest: str
    samples_per_second: float
    seconds: float
    energy: dict[str, Any]
    full_set: bool
    reference: float | None
    targets: list[dict[str, Any]] = field(default_factory=list)
    upper: float | None = None
    interval: list[float] | None = None
    interval_method: str | None = None
    golden: dict[str, Any] | None = None
    task: dict[str, Any] = field(default_factory=dict)
    preprocess_key: str = ""
    key: str = ""
    record: str = ""
    metrics: list[dict[str, Any]] = field(default_factory=list)  # every judged metric, the primary first
    tokens: dict[str, Any] | None = None  # generation: prompt/generated token totals and rates
    generation: dict[str, Any] | None = None  # generation: the settings used
    state: str = "computed"  # computed | cached
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (the stored record and ``--json`` output)."""
        return dict(vars(self))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ValidationReport:
        """A report from :meth:`to_json` output (unknown keys are ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})


def summary_rows(report: ValidationReport) -> Sequence[tuple[str, str]]:
    """(label, value) pairs of the human summary."""
    unit = report.unit
    pct = unit == "%"

    def fmt(x: float) -> str:
        return f"{x:.3f}%" if pct else f"{x:.5f}"

    rows = [("benchmark", f"{report.benchmark} ({report.model})"), (report.metric, fmt(report.value))]
    if report.interval is not None:
        lo, hi = report.interval
        rows.append((f"{int(CONFIDENCE * 100)}% interval", f"[{fmt(lo)}, {fmt(hi)}] ({report.interval_method})"))
    for t in report.targets:
        verdict = "pass" if t["passed"] else ("below" if report.full_set else "not reached by the interval")
        target = f"{t['target']:.4f}{unit if pct else ''}"
        of = f" of reference {report.reference:g}" if report.reference is not None else ""
        rows.append((f"target x{t['ratio']:g}", f"{target}{of}: {verdict}"))
    if report.upper is not None:
        rows.append(("upper bound", fmt(report.upper)))
    for m in report.metrics[1:]:
        rows.append((m["metric"], _metric_line(m, report.full_set)))
    if report.golden is not None:
        g = report.golden
        rows.append(("golden", f"{g['checked']} of {g['pinned']} pinned predictions checked, {g['mismatches']} differ"))
    rows.append(("samples", f"{report.samples} ({'full set' if report.full_set else 'subset'})"))
    rt = report.runtime
    threads = f", {rt['threads']} threads" if rt.get("threads") else ""
    rows.append(
        (
            "throughput",
            f"{report.samples_per_second:.1f} samples/s on {report.device} "
            f"({rt.get('runtime', '?')} {rt.get('version', '')}{threads}, batch {rt.get('batch_size', '?')})",
        )
    )
    if report.tokens is not None:
        t = report.tokens

        def rate(x: float | None) -> str:
            return f"{x:.1f}" if x is not None else "?"

        rows.append(
            (
                "tokens",
                f"{t['generated_tokens']} generated ({rate(t['generated_tokens_per_second'])}/s), "
                f"{t['prompt_tokens']} prompt ({rate(t['prompt_tokens_per_second'])}/s)",
            )
        )
    energy = report.energy
    if energy.get("available"):
        sources = ", ".join(energy.get("sources") or ())
        missing = f"; {energy['reason']}" if energy.get("reason") else ""
        rows.append(
            (
                "power",
                f"{energy['watts']:.1f} W average, {energy['joules_per_sample']:.3f} J/sample ({sources}{missing})",
            )
        )
    else:
        rows.append(("power", f"not available ({energy.get('reason') or 'no energy counters'})"))
    rows.append(("model", report.model_digest))
    rows.append(("result", ("PASS" if report.passed else "FAIL") + (" (cached)" if report.state == "cached" else "")))
    return rows


CONFIDENCE = 0.99


def _metric_line(m: dict[str, Any], full: bool) -> str:
    """One judged metric beside the primary: value, interval, each target, the upper bound, verdict."""
    unit = m.get("unit") or ""
    shown = f"{m['value']:.4f}{unit if unit == '%' else ''}"
    if m.get("interval") is not None:
        lo, hi = m["interval"]
        shown += f", 99% interval [{lo:.4f}, {hi:.4f}]"
    parts = [shown]
    for t in m.get("targets", []):
        verdict = "pass" if t["passed"] else ("below" if full else "not reached by the interval")
        parts.append(f">= {t['target']:.4f} (x{t['ratio']:g}): {verdict}")
    if m.get("upper") is not None:
        parts.append(f"<= {m['upper']:g}: {'pass' if m.get('upper_passed') else 'above'}")
    return "; ".join(parts) + ("" if m["passed"] else " -> FAIL")
