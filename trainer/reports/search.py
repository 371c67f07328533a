"""The trials of a hyperparameter search as an HTML table for the dashboard.

Same constraints as the evaluation report: the ZenML dashboard renders `HTMLString` in a
sandboxed frame, so inline styles only, no scripts.
"""

from __future__ import annotations

import html
from typing import Any

from trainer.results import SearchResult


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 else f"{value:.4g}"
    return html.escape(str(value)) if value is not None else "-"


def render_search_html(result: SearchResult, *, title: str = "Hyperparameter search") -> str:
    """One row per trial (parameters, score, state, seconds), the best trial in bold,
    sorted best first."""
    names = list(dict.fromkeys(name for trial in result.trials for name in trial.params))
    reverse = result.direction == "maximize"
    missing = float("-inf") if reverse else float("inf")
    ordered = sorted(
        result.trials,
        key=lambda t: t.score if t.score is not None else missing,
        reverse=reverse,
    )
    head = "".join(
        f'<th style="text-align:left;padding:4px 8px">{html.escape(name)}</th>'
        for name in ("trial", *names, result.metric, "state", "seconds")
    )
    rows = []
    for trial in ordered:
        weight = "font-weight:bold;" if trial.number == result.best_trial else ""
        cells = [trial.number, *(trial.params.get(name) for name in names)]
        cells += [trial.score, trial.state, trial.seconds]
        rows.append(
            f'<tr style="{weight}">'
            + "".join(f'<td style="padding:2px 8px">{_cell(c)}</td>' for c in cells)
            + "</tr>"
        )
    return (
        '<div style="font-family:sans-serif;font-size:13px">'
        f"<h3>{html.escape(title)}</h3>"
        f"<p>{len(result.trials)} trials in {result.seconds:.0f} s; {result.direction} "
        f"{html.escape(result.metric)}; best: trial {result.best_trial} "
        f"({result.best_score:.4f})</p>"
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
