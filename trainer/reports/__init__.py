"""HTML views for the dashboard: the evaluation comparison with training curves, and
the trials of a hyperparameter search.
"""

from trainer.reports.comparison import render_comparison_html, render_report_page
from trainer.reports.curves import (
    eval_metric_keys,
    nice_ticks,
    render_chart,
    render_training_curves_html,
    series,
)
from trainer.reports.search import render_search_html

__all__ = [
    "eval_metric_keys",
    "nice_ticks",
    "render_chart",
    "render_comparison_html",
    "render_report_page",
    "render_search_html",
    "render_training_curves_html",
    "series",
]
