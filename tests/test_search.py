"""Hyperparameter search: config validation, a 3-trial Optuna search on the tiny model,
and the final training with the best trial's parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from transformers import TrainerCallback

import trainer.training.trainer as training
from tests.conftest import pairs_dataset, tiny_run_config, write_run_yaml
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.results import SearchResult, TrialRecord
from trainer.training import apply_best, build_trainer, run_search


def _config(model_path: Path, pairs_file: Path, search: dict[str, Any] | None) -> dict:
    return tiny_run_config(
        model_path,
        {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
        evaluators=[{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
        search=search,
    )


SPACE = {
    "learning_rate": {"low": 1e-5, "high": 5e-3, "log": True},
    "per_device_train_batch_size": [4, 8],
    "datasets.docs.loss.params.scale": {"low": 5.0, "high": 40.0},
}


class _SeenArguments(TrainerCallback):
    """What each trial actually trained with, as the trainer saw it."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, int]] = []

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.seen.append((args.learning_rate, args.per_device_train_batch_size))


@pytest.mark.slow
def test_search_picks_the_best_trial_and_the_final_training_uses_it(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig.model_validate(
        _config(
            tiny_model_path,
            pairs_file,
            {"space": SPACE, "n_trials": 3, "metric": "docs-ir_cosine_ndcg@10", "max_samples": 24},
        )
    )
    train_data, held_out = load_datasets(config)
    scales: list[float] = []
    real_run_loss = training.run_loss

    def spy_run_loss(trial_config: RunConfig, model: Any, **kwargs: Any) -> Any:
        loss = real_run_loss(trial_config, model, **kwargs)
        scales.append(loss.scale)
        return loss

    monkeypatch.setattr(training, "run_loss", spy_run_loss)
    seen = _SeenArguments()
    result = run_search(config, train_data, held_out, callbacks=[seen])

    assert len(result.trials) == 3
    # Every trial trained with its own arguments and its own loss parameters.
    assert seen.seen == [
        (t.params["learning_rate"], t.params["per_device_train_batch_size"]) for t in result.trials
    ]
    assert scales == pytest.approx(
        [t.params["datasets.docs.loss.params.scale"] for t in result.trials]
    )
    assert all(t.state == "COMPLETE" and t.seconds is not None for t in result.trials)
    scores = [t.score for t in result.trials]
    assert len(set(scores)) > 1, "trials with different parameters scored the same"
    assert result.best_score == max(scores)
    best = next(t for t in result.trials if t.number == result.best_trial)
    assert best.score == result.best_score
    assert best.params == result.best_params
    assert set(result.best_params) == set(SPACE)

    final = apply_best(config, result)
    assert final.search is None
    assert final.training["learning_rate"] == result.best_params["learning_rate"]
    assert (
        final.training["per_device_train_batch_size"]
        == result.best_params["per_device_train_batch_size"]
    )
    assert final.datasets["docs"].loss.params["scale"] == pytest.approx(
        result.best_params["datasets.docs.loss.params.scale"]
    )
    assert final.training["logging_steps"] == 1  # untouched arguments survive

    trainer = build_trainer(final, train_data, output_dir=tmp_path / "final")
    trainer.train()
    assert trainer.args.learning_rate == result.best_params["learning_rate"]
    assert (
        trainer.args.per_device_train_batch_size
        == result.best_params["per_device_train_batch_size"]
    )
    assert trainer.loss.scale == pytest.approx(
        result.best_params["datasets.docs.loss.params.scale"]
    )
    # The full training set (45 rows), not the per-trial cap of 24.
    assert len(trainer.train_dataset) == 45


def test_result_round_trips_as_json() -> None:
    result = SearchResult(
        metric="docs-ir_cosine_ndcg@10",
        direction="maximize",
        trials=[
            TrialRecord(
                number=0, params={"learning_rate": 1e-4}, score=0.5, state="COMPLETE", seconds=1.0
            )
        ],
        best_trial=0,
        best_params={"learning_rate": 1e-4},
        best_score=0.5,
        seconds=1.2,
    )
    assert SearchResult.model_validate_json(result.model_dump_json()) == result


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (
            {"space": {"learnin_rate": [1e-5]}, "metric": "docs-ir_cosine_ndcg@10"},
            r"search.space.learnin_rate: not a SentenceTransformerTrainingArguments field",
        ),
        (
            {"space": {"output_dir": ["x"]}, "metric": "docs-ir_cosine_ndcg@10"},
            r"search.space.output_dir: set by the run itself",
        ),
        (
            {
                "space": {"datasets.nope.loss.params.scale": [1.0]},
                "metric": "docs-ir_cosine_ndcg@10",
            },
            r"no dataset 'nope'; datasets: docs",
        ),
        (
            {
                "space": {"datasets.docs.loss.params.scal": [1.0]},
                "metric": "docs-ir_cosine_ndcg@10",
            },
            r"MultipleNegativesRankingLoss has no parameter 'scal'; its parameters: scale",
        ),
        (
            {"space": {"learning_rate": [1e-5]}, "metric": "ndcg"},
            r"metric 'ndcg' must be an evaluator metric key",
        ),
        (
            {"space": {"learning_rate": [1e-5]}, "metric": "eval_docs-ir_cosine_ndcg@10"},
            r"without the trainer's 'eval_' prefix",
        ),
        (
            {"space": {"learning_rate": [1e-5]}, "metric": "other-ir_cosine_ndcg@10"},
            r"names no evaluator of this run; metric keys start with one of: docs-ir_",
        ),
        (
            {"space": {"learning_rate": []}, "metric": "docs-ir_cosine_ndcg@10"},
            r"search.space.learning_rate: an empty list of choices",
        ),
        (
            {"space": {"learning_rate": {"low": 1e-3, "high": 1e-5}}, "metric": "docs-ir_x"},
            r"low \(0.001\) must be below high",
        ),
        (
            {
                "space": {"learning_rate": {"low": 0, "high": 1e-3, "log": True}},
                "metric": "docs-ir_x",
            },
            r"log: true needs a positive low bound",
        ),
        ({"space": {}, "metric": "docs-ir_x"}, r"search.space is empty"),
        (
            {"space": {"learning_rate": [1e-5]}, "metric": "docs-ir_x", "n_trials": 0},
            r"n_trials",
        ),
    ],
)
def test_bad_search_blocks_fail_before_anything_loads(
    search: dict, message: str, tiny_model_path: Path, pairs_file: Path
) -> None:
    with pytest.raises(ValidationError, match=message):
        RunConfig.model_validate(_config(tiny_model_path, pairs_file, search))


def test_default_evaluator_names_are_valid_metric_prefixes(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    document = _config(
        tiny_model_path,
        pairs_file,
        {
            "space": {"learning_rate": [1e-5, 1e-4]},
            "metric": "docs-information_retrieval_cosine_ndcg@10",
        },
    )
    document.pop("evaluators")
    assert RunConfig.model_validate(document).search is not None


@pytest.mark.slow
def test_the_pipeline_searches_then_trains_with_the_best_trial(
    zenml_client: Any, tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """The real pipeline with a `search` block: the search step records every trial, the
    train step trains with the best trial's parameters, the card names them."""
    from huggingface_hub import ModelCard

    from pipelines.finetune import finetune_pipeline

    document = _config(
        tiny_model_path,
        pairs_file,
        {
            "space": {"learning_rate": {"low": 1e-5, "high": 5e-3, "log": True}},
            "n_trials": 2,
            "metric": "docs-ir_cosine_ndcg@10",
            "max_samples": 16,
        },
    )
    document["gate"] = {"min_improvement": None, "min_steps": 0}
    config = RunConfig.model_validate(document)
    config_file = write_run_yaml(tmp_path / "run.yaml", document, enable_cache=False)
    run = zenml_client.get_pipeline_run(
        finetune_pipeline.with_options(config_path=str(config_file))().id
    )
    search_step = run.steps["hyperparameter_search"]
    result = search_step.outputs["search_result"][0].load()
    assert isinstance(result, SearchResult)
    recorded = search_step.run_metadata["search"]
    assert recorded["best_trial"] == result.best_trial
    assert set(recorded["trials"]) == {"trial_0", "trial_1"}
    assert recorded["trials"]["trial_1"]["params"] == result.trials[1].params
    assert recorded["trials"]["trial_1"]["score"] == result.trials[1].score

    report = str(search_step.outputs["search_report"][0].load())
    assert report.count("<tr") == 3  # header + one row per trial
    assert "docs-ir_cosine_ndcg@10" in report and "<script" not in report

    tuned = search_step.outputs["tuned_config"][0].load()
    assert tuned == apply_best(config, result)
    assert tuned.training["learning_rate"] == result.best_params["learning_rate"]

    # The final training ran with the best trial's learning rate (its history says so:
    # the LR schedule starts from it), and the card records the search.
    training = run.steps["train"].outputs["training"][0].load()
    assert (
        max(row["learning_rate"] for row in training.history if "learning_rate" in row)
        <= (result.best_params["learning_rate"])
    )
    card = ModelCard(str(run.steps["model_card"].outputs["model_card"][0].load()))
    assert f"Hyperparameters chosen by a search of 2 trials (best `{result.metric}`" in card.text
    assert f"| `learning_rate` | {result.best_params['learning_rate']} |" in card.text
