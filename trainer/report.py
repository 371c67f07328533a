"""A self-contained HTML view of a base-vs-fine-tuned comparison.

The ZenML dashboard renders `HTMLString` artifacts in a sandboxed frame: no scripts or
external assets, so the chart is inline SVG and the styles are inline.
"""

from __future__ import annotations

import html

from trainer.results import Evaluation

_BAR_WIDTH = 260


def _bar(value: float, colour: str) -> str:
    width = max(0.0, min(1.0, value)) * _BAR_WIDTH
    return (
        f'<svg width="{_BAR_WIDTH}" height="12" role="img">'
        f'<rect width="{width:.1f}" height="12" fill="{colour}"/></svg>'
    )


def render_comparison_html(evaluation: Evaluation, *, title: str = "Evaluation") -> str:
    """A table of every metric (base, fine-tuned, delta) with bars for scores in [0, 1]."""
    primary = evaluation.primary_metric
    rows = []
    for metric, tuned in evaluation.finetuned.items():
        base = evaluation.base.get(metric)
        delta = evaluation.improvement.get(metric)
        weight = "font-weight:bold;" if metric == primary else ""
        delta_colour = "#1a7f37" if (delta or 0) > 0 else "#cf222e" if (delta or 0) < 0 else "#555"
        rows.append(
            f'<tr style="{weight}"><td>{html.escape(metric)}</td>'
            f"<td>{base:.4f}<br>{_bar(base, '#8c959f')}</td>"
            f"<td>{tuned:.4f}<br>{_bar(tuned, '#0969da')}</td>"
            f'<td style="color:{delta_colour}">{delta:+.4f}</td></tr>'
            if base is not None and delta is not None
            else f"<tr><td>{html.escape(metric)}</td><td>-</td><td>{tuned:.4f}</td><td>-</td></tr>"
        )
    head = "".join(
        f'<th style="text-align:left;padding:4px 8px">{name}</th>'
        for name in ("metric", "base model", "fine-tuned", "change")
    )
    caption = f"primary metric: {html.escape(primary)}" if primary else ""
    return (
        '<div style="font-family:sans-serif;font-size:13px">'
        f"<h3>{html.escape(title)}</h3><p>{caption}</p>"
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
