"""Training curves from the trainer's `log_history`, as self-contained inline SVG.

The ZenML dashboard renders `HTMLString` artifacts in a sandboxed frame: no scripts, no
external assets. So each chart is plain SVG with inline styles; hovering a point shows
its value through SVG's own `<title>` tooltip. Pure functions: history in, HTML out.

Charts: training loss (with the evaluation loss when the trainer computed one), learning
rate, gradient norm, and, when evaluation ran during training, the evaluator metrics
over steps.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 440, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 30, 42
PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a")

DEFAULT_METRIC_SUFFIXES = (
    "_ndcg@10",
    "_spearman_cosine",
    "_cosine_accuracy",
    "_cosine_ap",
)
"""Evaluator metrics charted when the caller names none: each evaluator type's usual
primary metric (an information-retrieval evaluator alone reports ~20 metrics)."""

_NOT_METRICS = ("runtime", "samples_per_second", "steps_per_second", "loss")


@dataclass(frozen=True)
class Series:
    """One line of a chart: (step, value) points in step order."""

    name: str
    points: tuple[tuple[float, float], ...]


def series(history: Sequence[dict[str, Any]], key: str, name: str | None = None) -> Series:
    """The (step, value) points of `key` over the history rows that have it."""
    points = tuple(
        (float(row["step"]), float(row[key]))
        for row in history
        if isinstance(row.get(key), int | float) and "step" in row and math.isfinite(row[key])
    )
    return Series(name or key, points)


def _keys(history: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of the history, in first-seen order."""
    return list(dict.fromkeys(key for row in history for key in row))


def eval_metric_keys(
    history: Sequence[dict[str, Any]], metrics: Sequence[str] | None = None
) -> list[str]:
    """`eval_<metric>` keys to chart: the named metrics, else each evaluator's usual
    primary metric, in first-seen order."""
    seen = [key for key in _keys(history) if key.startswith("eval_")]
    if metrics is not None:
        wanted = {f"eval_{metric}" for metric in metrics}
        return [key for key in seen if key in wanted]
    return [
        key
        for key in seen
        if not key.endswith(_NOT_METRICS) and key.endswith(DEFAULT_METRIC_SUFFIXES)
    ]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k apart) covering [low, high], at most
    `count` + 2 of them."""
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    magnitude = 10 ** math.floor(math.log10((high - low) / count))
    for multiple in (1, 2, 2.5, 5, 10, 20):
        step = multiple * magnitude
        # The epsilon keeps float noise (5e-5 / 1e-5 = 5.000000000000001) from adding a tick.
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last - first <= count + 1:
            break
    return [round(index * step, 12) for index in range(first, last + 1)]


def format_value(value: float) -> str:
    """Tick and tooltip text: `4.1e-05` for small or large magnitudes, else 3 digits."""
    if value == 0:
        return "0"
    if abs(value) < 1e-2 or abs(value) >= 1e5:
        return f"{value:.1e}"
    return f"{value:.3g}"


def render_chart(
    title: str, lines: Sequence[Series], *, y_label: str, legend: bool | None = None
) -> str:
    """One SVG line chart with axes, ticks, labels and a legend (by default only when
    it has several lines)."""
    lines = [line for line in lines if line.points]
    if not lines:
        return ""
    xs = [x for line in lines for x, _ in line.points]
    ys = [y for line in lines for _, y in line.points]
    x_ticks = nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    show_legend = legend if legend is not None else len(lines) > 1
    # The legend sits above the plot, right of the title; each row past two moves the plot down.
    top = TOP + 12 * max(0, len(lines) - 2) if show_legend else TOP
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - top - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        # Shrinks with a narrow page (the viewBox keeps the proportions).
        'style="font-family:sans-serif;font-size:11px;max-width:100%;height:auto">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for tick in y_ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eaeef2"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{format_value(tick)}</text>'
        )
    for tick in x_ticks:
        x = px(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" '
            f'stroke="#57606a"/><text x="{x:.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle">{format_value(tick)}</text>'
        )
    parts.append(
        f'<path d="M{LEFT},{top} V{top + plot_h} H{WIDTH - RIGHT}" fill="none" stroke="#57606a"/>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">step</text>'
        f'<text transform="translate(13,{top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{html.escape(y_label)}</text>'
    )
    for index, line in enumerate(lines):
        colour = PALETTE[index % len(PALETTE)]
        coordinates = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line.points)
        parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="1.6"/>'
        )
        radius = 2.5 if len(line.points) <= 40 else 0.8
        for x, y in line.points:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{radius}" fill="{colour}">'
                f"<title>{html.escape(line.name)} at step {x:g}: {format_value(y)}</title></circle>"
            )
        if show_legend:
            legend_y = 7 + 12 * index
            parts.append(
                f'<rect x="{WIDTH - RIGHT - 172}" y="{legend_y}" width="10" height="3" '
                f'fill="{colour}"/><text x="{WIDTH - RIGHT - 158}" y="{legend_y + 5}">'
                f"{html.escape(_short(line.name))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def render_training_curves_html(
    history: Sequence[dict[str, Any]], *, metrics: Sequence[str] | None = None
) -> str:
    """All charts the history supports, side by side; a short note when it has none.

    `metrics` names the evaluator metrics to chart over steps (keys without the
    trainer's `eval_` prefix, e.g. the run's primary metric); by default each
    evaluator's usual primary metric.
    """
    eval_losses = [
        key for key in _keys(history) if key.startswith("eval_") and key.endswith("loss")
    ]
    charts = [
        render_chart(
            "Loss",
            [
                series(history, "loss", "training loss"),
                # One eval loss per dataset when several datasets train (eval_<name>_loss).
                *(series(history, key, key.replace("_", " ")) for key in eval_losses),
            ],
            y_label="loss",
        ),
        render_chart("Learning rate", [series(history, "learning_rate")], y_label="learning rate"),
        render_chart("Gradient norm", [series(history, "grad_norm")], y_label="grad norm"),
    ]
    metric_keys = eval_metric_keys(history, metrics)
    if metric_keys:
        charts.append(
            render_chart(
                "Evaluation during training",
                [series(history, key, key.removeprefix("eval_")) for key in metric_keys],
                y_label="metric",
                legend=True,
            )
        )
    charts = [chart for chart in charts if chart]
    body = (
        "".join(
            f'<div style="margin:0 12px 12px 0;max-width:100%">{chart}</div>' for chart in charts
        )
        if charts
        else "<p>No training logs were recorded (set training.logging_steps).</p>"
    )
    return (
        '<div style="font-family:sans-serif;font-size:13px"><h3>Training curves</h3>'
        f'<div style="display:flex;flex-wrap:wrap">{body}</div></div>'
    )
