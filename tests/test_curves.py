"""Training curves as inline SVG: from a real training history, sandbox-safe, readable axes."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.conftest import pairs_dataset, tiny_run_config
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.evaluation import build_evaluators
from trainer.reports import (
    eval_metric_keys,
    nice_ticks,
    render_chart,
    render_training_curves_html,
    series,
)
from trainer.training import build_trainer

pytestmark = pytest.mark.slow  # processes, pipelines or the network: see pyproject.toml

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def history(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """A real `log_history`: 2 epochs with the evaluator every 3 steps."""
    from tests.conftest import REPO_ROOT, write_jsonl

    rows = (REPO_ROOT / "data" / "stdlib_docs" / "train.jsonl").read_text().splitlines()[:60]
    folder = tmp_path_factory.mktemp("curves")
    pairs = write_jsonl(folder / "pairs.jsonl", [__import__("json").loads(r) for r in rows])
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs, eval_size=0.25)},
            evaluators=[{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
            training={"per_device_train_batch_size": 8, "logging_steps": 1, "num_train_epochs": 2,
                      "eval_strategy": "steps", "eval_steps": 3},
        )
    )  # fmt: skip
    train_data, held_out = load_datasets(config)
    trainer = build_trainer(
        config,
        train_data,
        held_out,
        output_dir=folder / "out",
        evaluator=build_evaluators(config, held_out),
    )
    trainer.train()
    return list(trainer.state.log_history)


def _svgs(page: str) -> list[ElementTree.Element]:
    return [ElementTree.fromstring(svg) for svg in re.findall(r"<svg .*?</svg>", page, flags=re.S)]


def test_report_has_loss_lr_grad_norm_and_metric_over_steps(history: list[dict]) -> None:
    page = render_training_curves_html(history)
    titles = [svg.find(f"{SVG}title").text for svg in _svgs(page)]
    assert titles == ["Loss", "Learning rate", "Gradient norm", "Evaluation during training"]
    loss_chart, _, _, metric_chart = _svgs(page)

    # Training loss: one point per step; eval loss: one per evaluation (steps 3, 6, 9, 12).
    lines = loss_chart.findall(f"{SVG}polyline")
    assert len(lines) == 2
    assert len(lines[0].get("points").split()) == 12
    assert len(lines[1].get("points").split()) == 4
    tooltips = [t.text for t in loss_chart.iter(f"{SVG}title")]
    assert any(t.startswith("training loss at step 1: ") for t in tooltips)
    assert any(t.startswith("eval loss at step 12: ") for t in tooltips)

    # The default metric choice is the evaluator's NDCG@10, not its ~20 other metrics.
    (metric_line,) = metric_chart.findall(f"{SVG}polyline")
    assert len(metric_line.get("points").split()) == 4
    assert "docs-ir_cosine_ndcg@10" in ElementTree.tostring(metric_chart, encoding="unicode")


def test_axes_carry_ticks_and_labels(history: list[dict]) -> None:
    loss_chart = _svgs(render_training_curves_html(history))[0]
    labels = [t.text for t in loss_chart.iter(f"{SVG}text")]
    assert "step" in labels and "loss" in labels
    assert {"0", "2", "4", "6", "8", "10", "12"} <= set(labels)  # x ticks over 12 steps
    assert len([t for t in labels if re.fullmatch(r"[0-9.]+", t or "")]) >= 10


def test_html_is_sandbox_safe(history: list[dict]) -> None:
    page = render_training_curves_html(history)
    assert "<script" not in page and "href" not in page and "src=" not in page
    assert "url(" not in page


def test_metrics_can_be_named(history: list[dict]) -> None:
    keys = eval_metric_keys(history, ["docs-ir_cosine_mrr@10", "docs-ir_cosine_recall@5"])
    assert keys == ["eval_docs-ir_cosine_recall@5", "eval_docs-ir_cosine_mrr@10"]  # log order


def test_empty_history_says_so() -> None:
    assert "No training logs were recorded" in render_training_curves_html([])


def test_values_are_escaped_and_nonfinite_points_dropped() -> None:
    rows = [{"step": 1, "m": 1.0}, {"step": 2, "m": float("nan")}, {"step": 3, "m": 2.0}]
    assert series(rows, "m").points == ((1.0, 1.0), (3.0, 2.0))
    chart = render_chart("<b>", [series(rows, "m", "a<b")], y_label="y")
    assert "<b>" not in chart and "&lt;b&gt;" in chart


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1, 12, [0, 2, 4, 6, 8, 10, 12]),
        (0.2, 0.9, [0.2, 0.4, 0.6, 0.8, 1.0]),
        (1e-6, 5e-5, [0, 1e-5, 2e-5, 3e-5, 4e-5, 5e-5]),
        (5, 5, None),
    ],
)
def test_ticks_are_round_numbers(low: float, high: float, expected: list | None) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    if expected is not None:
        assert ticks == pytest.approx(expected)


def _steps(chart: ElementTree.Element, name: str) -> list[float]:
    """The steps of the points of line `name` in a chart, from their tooltips."""
    return [
        float(t.text.split(" at step ")[1].split(":")[0])
        for t in chart.iter(f"{SVG}title")
        if t.text and t.text.startswith(f"{name} at step ")
    ]


def test_curves_end_at_the_last_step_and_the_default_logs_often(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """13 steps: logging every 5 still plots step 13; the default (1% of the run) logs
    every step; evaluation during training (every 10% by default) ends at step 13 too."""
    from trainer.training import train

    def run(training: dict) -> list[dict]:
        document = tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file, eval_size=8)},  # 52 rows: 13 steps of 4
            evaluators=[{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
        )
        document["training"] = {"per_device_train_batch_size": 4, **training}
        config = RunConfig.model_validate(document)
        train_data, held_out = load_datasets(config)
        return train(
            config, train_data, held_out, output_dir=tmp_path / str(len(training))
        ).summary.history

    every_five = run({"logging_steps": 5})
    loss_chart = _svgs(render_training_curves_html(every_five))[0]
    assert _steps(loss_chart, "training loss") == [5, 10, 13]

    default = run({"eval_strategy": "steps"})
    loss_chart, *_, metric_chart = _svgs(render_training_curves_html(default))
    assert _steps(loss_chart, "training loss") == list(range(1, 14))
    assert _steps(metric_chart, "docs-ir_cosine_ndcg@10") == [2, 4, 6, 8, 10, 12, 13]
