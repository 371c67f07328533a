"""A self-contained HTML view of a base-vs-fine-tuned comparison.

The ZenML dashboard renders `HTMLString` artifacts in a sandboxed frame: no scripts or
external assets, so the chart is inline SVG and the styles are inline. Everything scales
down to a narrow window (640 px, a phone): the table takes the page's width, long metric
names wrap, bars are a share of their cell and the charts shrink.
"""

from __future__ import annotations

import html
from typing import Any

from trainer.reports.curves import render_training_curves_html
from trainer.results import Evaluation, GateDecision

_CELL = "padding:4px 8px;vertical-align:top"


def _bar(value: float, colour: str) -> str:
    """A bar as wide as the score's share of [0, 1] of its cell: it shrinks with the page."""
    width = max(0.0, min(1.0, value)) * 100
    return (
        '<div style="background:#eaeef2;height:8px;margin-top:3px">'
        f'<div style="width:{width:.1f}%;height:8px;background:{colour}"></div></div>'
    )


def _score(value: float | None, colour: str) -> str:
    if value is None:
        return f'<td style="{_CELL}">-</td>'
    return f'<td style="{_CELL}">{value:.4f}{_bar(value, colour)}</td>'


def _dimensions_html(evaluation: Evaluation) -> str:
    """The primary metric per Matryoshka dimension, base vs fine-tuned ("" without)."""
    if not evaluation.by_dimension:
        return ""
    rows = []
    for score in evaluation.by_dimension:
        delta = None if score.base is None else score.finetuned - score.base
        change = "-" if delta is None else f"{delta:+.4f}"
        rows.append(
            f'<tr><td style="{_CELL}">{score.dimension}</td>'
            f"{_score(score.base, '#8c959f')}{_score(score.finetuned, '#0969da')}"
            f'<td style="{_CELL};white-space:nowrap">{change}</td></tr>'
        )
    head = "".join(
        f'<th style="text-align:left;{_CELL}">{name}</th>'
        for name in ("dimension", "base model", "fine-tuned", "change")
    )
    primary = html.escape(evaluation.primary_metric or "primary metric")
    return (
        f"<h4>{primary} per embedding dimension</h4>"
        '<table style="border-collapse:collapse;width:100%;max-width:900px;table-layout:fixed">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_comparison_html(
    evaluation: Evaluation,
    *,
    title: str = "Evaluation",
    history: list[dict[str, Any]] | None = None,
    gate: GateDecision | None = None,
) -> str:
    """A table of every metric (base, fine-tuned, change, and the production model when it
    was scored) with bars for scores in [0, 1], the gate's verdict with the improvement's
    confidence interval (`gate`), then the training curves of `history`."""
    primary = evaluation.primary_metric
    production = evaluation.production
    rows = []
    for metric, tuned in evaluation.finetuned.items():
        delta = evaluation.improvement.get(metric)
        weight = "font-weight:bold;" if metric == primary else ""
        delta_colour = "#1a7f37" if (delta or 0) > 0 else "#cf222e" if (delta or 0) < 0 else "#555"
        change = (
            f'<td style="{_CELL}">-</td>'
            if delta is None
            else f'<td style="{_CELL};color:{delta_colour};white-space:nowrap">{delta:+.4f}</td>'
        )
        cells = [
            # Long metric names break anywhere rather than widen the table past the page.
            f'<td style="{_CELL};overflow-wrap:anywhere">{html.escape(metric)}</td>',
            _score(evaluation.base.get(metric), "#8c959f"),
            _score(tuned, "#0969da"),
            change,
        ]
        if production is not None:
            cells.append(_score(production.get(metric), "#bf8700"))
        rows.append(f'<tr style="{weight}">{"".join(cells)}</tr>')
    names = ["metric", "base model", "fine-tuned", "change"]
    if production is not None:
        names.append("production")
    head = "".join(
        f'<th style="text-align:left;{_CELL}{";width:34%" if index == 0 else ""}">{name}</th>'
        for index, name in enumerate(names)
    )
    caption = f"primary metric: {html.escape(primary)}" if primary else ""
    if evaluation.production_model:
        caption += f"; production: {html.escape(evaluation.production_model)}"
    verdict = ""
    if gate is not None:
        word = "passed" if gate.passed else "FAILED"
        why = "" if gate.passed else f": {'; '.join(gate.reasons)}"
        verdict = (
            f"<p><b>gate {word}</b> on {html.escape(gate.metric)} "
            f"({html.escape(gate.improvement_text())}){html.escape(why)}</p>"
        )
    curves = (
        render_training_curves_html(history, metrics=[primary] if primary else None)
        if history
        else ""
    )
    return (
        '<div style="font-family:sans-serif;font-size:13px;overflow-wrap:anywhere">'
        f"<h3>{html.escape(title)}</h3><p>{caption}</p>{verdict}"
        # The table takes the page's width (at most 900 px) and never more: score columns
        # share what the metric column leaves, bars scale with them.
        '<table style="border-collapse:collapse;width:100%;max-width:900px;table-layout:fixed">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{_dimensions_html(evaluation)}{curves}</div>"
    )


def render_report_page(title: str, fragment: str) -> str:
    """`fragment` (a report as the dashboards show it) as a standalone HTML page, e.g.
    `output.dir/report.html`: UTF-8, the device's width, a little margin."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body style="margin:8px">{fragment}</body></html>\n'
    )
