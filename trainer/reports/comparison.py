"""A self-contained HTML view of a base-vs-fine-tuned comparison.

The ZenML dashboard renders `HTMLString` artifacts in a sandboxed frame: no scripts or
external assets, so the chart is inline SVG and the styles are inline.
"""

from __future__ import annotations

import html
from typing import Any

from trainer.reports.curves import render_training_curves_html
from trainer.results import Evaluation

_BAR_WIDTH = 260


def _bar(value: float, colour: str) -> str:
    width = max(0.0, min(1.0, value)) * _BAR_WIDTH
    return (
        f'<svg width="{_BAR_WIDTH}" height="12" role="img">'
        f'<rect width="{width:.1f}" height="12" fill="{colour}"/></svg>'
    )


def _score(value: float | None, colour: str) -> str:
    return "<td>-</td>" if value is None else f"<td>{value:.4f}<br>{_bar(value, colour)}</td>"


def render_comparison_html(
    evaluation: Evaluation,
    *,
    title: str = "Evaluation",
    history: list[dict[str, Any]] | None = None,
) -> str:
    """A table of every metric (base, fine-tuned, change, and the production model when it
    was scored) with bars for scores in [0, 1], then the training curves of `history`."""
    primary = evaluation.primary_metric
    production = evaluation.production
    rows = []
    for metric, tuned in evaluation.finetuned.items():
        delta = evaluation.improvement.get(metric)
        weight = "font-weight:bold;" if metric == primary else ""
        delta_colour = "#1a7f37" if (delta or 0) > 0 else "#cf222e" if (delta or 0) < 0 else "#555"
        change = (
            "<td>-</td>" if delta is None else f'<td style="color:{delta_colour}">{delta:+.4f}</td>'
        )
        cells = [
            f"<td>{html.escape(metric)}</td>",
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
    head = "".join(f'<th style="text-align:left;padding:4px 8px">{name}</th>' for name in names)
    caption = f"primary metric: {html.escape(primary)}" if primary else ""
    if evaluation.production_model:
        caption += f"; production: {html.escape(evaluation.production_model)}"
    curves = (
        render_training_curves_html(history, metrics=[primary] if primary else None)
        if history
        else ""
    )
    return (
        '<div style="font-family:sans-serif;font-size:13px">'
        f"<h3>{html.escape(title)}</h3><p>{caption}</p>"
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{curves}</div>"
    )
