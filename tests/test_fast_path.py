"""The fast path trains exactly like plain sentence-transformers where its levers are exact.

"Plain" here is `SentenceTransformerTrainer` built by hand with the same arguments, data
and losses; the fast path is `trainer.training.trainer.build_trainer` with the default speed
config (on CPU: tokenize once, everything else inactive). Same seed, same batches, same
token ids: the loss of every step and the final weights must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset, DatasetDict
from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer

import trainer.speed.tokenize as pretokenize
import trainer.training.trainer as training
from tests.conftest import pairs_dataset, tiny_run_config, write_jsonl
from tests.interrupts import KeepCheckpoint
from trainer.config import CheckpointConfig, ModelConfig, RunConfig
from trainer.data import load_datasets
from trainer.speed import Device, gpu_argument_levers, speed_report
from trainer.speed.collator import PreTokenizedCollator, pad_values_of
from trainer.training import build_loss

TOLERANCE = 1e-6


def _pairs(prefix: str, n: int) -> list[dict[str, Any]]:
    """Rows in which pairs of answers differ only in case ("x answer 3", "X ANSWER 3").

    For the uncased tokenizer these are one token sequence; for `no_duplicates` they are
    two different texts. A sampler that compared token ids instead of texts would keep
    such rows apart, draw other batches, and the loss curves would part.
    """
    answers = [f"{prefix} answer {i // 2}" for i in range(n)]
    return [
        {"q": f"{prefix} question {i}", "d": answer.upper() if i % 2 else answer}
        for i, answer in enumerate(answers)
    ]


def _docs(path: Path) -> dict[str, Any]:
    return {"docs": pairs_dataset(path)}


def _config(model_path: Path, datasets: dict, tmp_path: Path, **training: Any) -> RunConfig:
    return RunConfig.model_validate(
        tiny_run_config(
            model_path,
            datasets,
            training={"per_device_train_batch_size": 8, "logging_steps": 1, **training},
            speed={"cache_dir": str(tmp_path / "token-cache")},
        )
    )


def _plain_trainer(
    config: RunConfig, train: DatasetDict, held_out: DatasetDict | None, output_dir: Path
) -> SentenceTransformerTrainer:
    """The same run set up with sentence-transformers alone, as its docs show."""
    model = training.load_model(config.model)
    losses = {name: build_loss(model, config.datasets[name].loss) for name in train}
    multi = config.is_multi_dataset
    evaluating = held_out and config.training.get("eval_strategy", "no") != "no"
    return SentenceTransformerTrainer(
        model=model,
        args=training.training_arguments(config, output_dir),
        train_dataset=train if multi else next(iter(train.values())),
        eval_dataset=(held_out if multi else next(iter(held_out.values()))) if evaluating else None,
        loss=losses if multi else next(iter(losses.values())),
    )


def _losses(trainer: Any, key: str = "loss") -> list[tuple[int, float]]:
    return [(row["step"], row[key]) for row in trainer.state.log_history if key in row]


def _assert_same_training(plain: Any, fast: Any, key: str = "loss") -> None:
    expected, actual = _losses(plain, key), _losses(fast, key)
    assert expected and [step for step, _ in actual] == [step for step, _ in expected]
    assert [loss for _, loss in actual] == pytest.approx(
        [loss for _, loss in expected], abs=TOLERANCE
    )
    for (name, value), (_, other) in zip(
        plain.model.state_dict().items(), fast.model.state_dict().items(), strict=True
    ):
        assert torch.allclose(value, other, atol=TOLERANCE), name


def test_single_dataset_with_prompt_and_eval_loss_matches_plain(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "pairs.jsonl", _pairs("alpha", 40))
    config = _config(
        tiny_model_path,
        {
            "docs": {
                "source": {"path": str(data)},
                "columns": {"q": "anchor", "d": "positive"},
                "prompt": "query: ",
                "eval_size": 8,
            }
        },
        tmp_path,
        eval_strategy="steps",
        eval_steps=2,
    )
    train, held_out = load_datasets(config)

    plain = _plain_trainer(config, train, held_out, tmp_path / "plain")
    plain.train()
    fast = training.build_trainer(config, train, held_out, output_dir=tmp_path / "fast")
    assert speed_report(fast).active_levers() == ["tokenize_once", "hashed_duplicates"]
    sampler = fast.get_train_dataloader().batch_sampler
    sampler = getattr(sampler, "batch_sampler", sampler)  # accelerate's wrapper, if any
    assert sampler.precompute_hashes and sampler.dataset.column_names == ["anchor", "positive"]
    fast.train()

    _assert_same_training(plain, fast)
    _assert_same_training(plain, fast, key="eval_loss")
    # The card still describes the text columns, not the token twin.
    card_columns = fast.model.model_card_data.train_datasets[0]["columns"]
    assert card_columns == ["<code>anchor</code>", "<code>positive</code>"]


def test_two_datasets_two_losses_and_a_prompt_match_plain(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", _pairs("alpha", 24))
    scored_rows = [
        {"a": f"beta left {i}", "b": f"beta right {i}", "score": (i % 5) / 4} for i in range(16)
    ]
    scored = write_jsonl(tmp_path / "scored.jsonl", scored_rows)
    config = _config(
        tiny_model_path,
        {
            "pairs": {
                "source": {"path": str(pairs)},
                "columns": {"q": "anchor", "d": "positive"},
                "prompt": {"anchor": "query: "},
            },
            "scored": {
                "source": {"path": str(scored)},
                "columns": {"a": "sentence1", "b": "sentence2", "score": "score"},
                "loss": {"name": "CoSENTLoss"},
            },
        },
        tmp_path,
        per_device_train_batch_size=4,
    )
    train, _ = load_datasets(config)

    plain = _plain_trainer(config, train, None, tmp_path / "plain")
    plain.train()
    fast = training.build_trainer(config, train, output_dir=tmp_path / "fast")
    fast.train()

    _assert_same_training(plain, fast)
    assert plain.state.global_step == fast.state.global_step == 10  # proportional: 6 + 4


def test_second_build_reads_the_cache_instead_of_tokenizing(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = _docs(pairs_file)
    config = _config(tiny_model_path, datasets, tmp_path)
    calls: list[int] = []
    encode = pretokenize._encode_batch

    def counting(batch: dict, **kwargs: Any) -> dict:
        calls.append(len(batch["anchor"]))
        return encode(batch, **kwargs)

    monkeypatch.setattr(pretokenize, "_encode_batch", counting)
    train, _ = load_datasets(config)

    first = speed_report(training.build_trainer(config, train, output_dir=tmp_path / "a"))
    assert sum(calls) == 60
    (record,) = first.tokenized
    assert not record.reused and Path(record.cache_file).is_file()
    written = Path(record.cache_file).stat().st_mtime_ns

    second = speed_report(training.build_trainer(config, train, output_dir=tmp_path / "b"))
    assert sum(calls) == 60, "the second build tokenized again"
    assert second.tokenized[0].reused and second.tokenized[0].cache_file == record.cache_file
    assert Path(record.cache_file).stat().st_mtime_ns == written

    # A different max length decides other token ids: a new cache file.
    shorter = config.model_copy(
        update={"model": config.model.model_copy(update={"max_seq_length": 16})}
    )
    third = speed_report(training.build_trainer(shorter, train, output_dir=tmp_path / "c"))
    assert not third.tokenized[0].reused and third.tokenized[0].cache_file != record.cache_file
    assert sum(calls) == 120


def test_cache_off_tokenizes_in_memory(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    datasets = _docs(pairs_file)
    config = RunConfig.model_validate(
        tiny_run_config(tiny_model_path, datasets, speed={"cache": False})
    )
    train, _ = load_datasets(config)
    report = speed_report(training.build_trainer(config, train, output_dir=tmp_path))
    assert report.tokenized[0].cache_file is None
    assert report.levers["tokenize_once"].detail == "1 dataset(s) tokenized in memory"


def test_every_lever_switches_off(tiny_model_path: Path, pairs_file: Path, tmp_path: Path) -> None:
    off = {
        "tokenize_once": False,
        "hashed_duplicates": False,
        "bf16": False,
        "tf32": False,
        "sdpa": False,
        "fused_adamw": False,
        "dataloader_workers": 0,
        "pin_memory": False,
        "compile": False,
    }
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            _docs(pairs_file),
            speed=off,
        )
    )
    train, _ = load_datasets(config)
    trainer = training.build_trainer(config, train, output_dir=tmp_path)
    report = speed_report(trainer)
    assert report.active_levers() == []
    assert report.levers["tokenize_once"].detail == "switched off in speed config"
    assert type(trainer.data_collator).__name__ == "SentenceTransformerDataCollator"

    # On a GPU the switches are what keeps each lever away from the training arguments.
    gpu = Device(cuda=True, name="test-gpu", bf16=True, tf32=True)
    overrides, states = gpu_argument_levers(config.speed, {}, gpu)
    assert overrides == {"dataloader_pin_memory": False}
    assert not any(state.active for state in states.values())


def test_gpu_levers_apply_only_on_cuda_and_never_over_the_training_block() -> None:
    speed = RunConfig.model_validate(
        {"model": {"name_or_path": "m"}, "datasets": {"d": {"source": {"path": "d.jsonl"}}}}
    ).speed
    gpu = Device(cuda=True, name="test-gpu", bf16=True, tf32=True)

    overrides, states = gpu_argument_levers(speed, {}, gpu)
    assert overrides == {
        "bf16": True,
        "tf32": True,
        "optim": "adamw_torch_fused",
        "dataloader_num_workers": 2,
        "dataloader_persistent_workers": True,
        "dataloader_pin_memory": True,
    }
    assert not states["compile"].active

    overrides, states = gpu_argument_levers(speed, {"fp16": True, "optim": "adamw_torch"}, gpu)
    assert "bf16" not in overrides and "optim" not in overrides
    assert states["bf16"].detail == "training sets fp16"
    assert states["fused_adamw"].detail == "training sets optim"

    overrides, _ = gpu_argument_levers(speed, {}, Device(cuda=True, name="old-gpu"))
    assert "bf16" not in overrides and "tf32" not in overrides

    overrides, states = gpu_argument_levers(speed, {}, Device(cuda=False))
    assert overrides == {}
    assert {name for name, state in states.items() if state.detail == "no CUDA device"} == {
        "bf16",
        "tf32",
        "fused_adamw",
        "dataloader_workers",
        "pin_memory",
    }
    assert states["compile"].detail == "switched off in speed config"


def test_resume_from_a_checkpoint_continues_the_same_run(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """Resumed at step 4 of 8, the fast path logs the losses the uninterrupted run logged."""
    config = _config(
        tiny_model_path, _docs(pairs_file), tmp_path, per_device_train_batch_size=16,
        num_train_epochs=2,
    ).model_copy(update={"checkpoints": CheckpointConfig(every_n_steps=4, keep=2)})  # fmt: skip
    train, _ = load_datasets(config)
    interrupted = tmp_path / "interrupted"

    whole = training.train(
        config, train, output_dir=tmp_path / "whole", callbacks=[KeepCheckpoint(4, interrupted)]
    )
    assert whole.summary.global_step == 8

    resumed = training.train(
        config, train, output_dir=interrupted, resume_from=interrupted / "checkpoint-4"
    )

    def losses_after_4(history: list[dict]) -> list[tuple[int, float]]:
        return [(row["step"], row["loss"]) for row in history if "loss" in row and row["step"] > 4]

    after, again = losses_after_4(whole.summary.history), losses_after_4(resumed.summary.history)
    assert again and [step for step, _ in again] == [step for step, _ in after]
    assert [loss for _, loss in again] == pytest.approx([loss for _, loss in after], abs=TOLERANCE)


def test_a_batch_that_differs_from_plain_turns_the_fast_path_off(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exactness probe: if the pre-tokenized batch ever differs, training goes plain."""
    pad_column = PreTokenizedCollator._pad_column

    def off_by_one(self: PreTokenizedCollator, features: list, encoding: Any) -> dict:
        columns = pad_column(self, features, encoding)
        columns[f"{encoding.column}_input_ids"] = columns[f"{encoding.column}_input_ids"] + 1
        return columns

    monkeypatch.setattr(PreTokenizedCollator, "_pad_column", off_by_one)
    datasets = _docs(pairs_file)
    config = _config(tiny_model_path, datasets, tmp_path)
    train, _ = load_datasets(config)
    trainer = training.build_trainer(config, train, output_dir=tmp_path)
    state = speed_report(trainer).levers["tokenize_once"]
    assert not state.active
    assert (
        state.detail
        == "dataset 'train': anchor_input_ids differs from sentence-transformers' batch"
    )
    assert type(trainer.data_collator).__name__ == "SentenceTransformerDataCollator"


def test_collator_pads_to_buckets_on_either_side(tiny_model_path: Path) -> None:
    model = training.load_model(ModelConfig(name_or_path=str(tiny_model_path)))
    texts = Dataset.from_dict({"anchor": ["a short one", "a much longer text than the other one"]})
    twin = pretokenize.tokenize_once(
        texts, model, prompts={"anchor": None}, label_column=None, cache_dir=None, name="t"
    )
    tokenizer = model.tokenizer
    rows = [twin.dataset[0], twin.dataset[1]]
    for side in ("right", "left"):
        collator = PreTokenizedCollator(
            preprocess_fn=model.preprocess,
            encodings={None: twin.encodings},
            pad_values=pad_values_of(tokenizer),
            padding_side=side,
            pad_to_multiple_of=16,
        )
        batch = collator(rows)
        tokenizer.padding_side = side
        expected = tokenizer(
            list(texts["anchor"]), padding=True, pad_to_multiple_of=16, return_tensors="pt"
        )
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            assert torch.equal(batch[f"anchor_{key}"], expected[key]), (side, key)
    tokenizer.padding_side = "right"


def test_explicit_eval_dataset_is_tokenized_the_plain_way(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    datasets = _docs(pairs_file)
    config = _config(tiny_model_path, datasets, tmp_path)
    train, _ = load_datasets(config)
    trainer = training.build_trainer(config, train, output_dir=tmp_path)
    metrics = trainer.evaluate(eval_dataset=train["docs"].select(range(16)))
    assert metrics["eval_loss"] > 0
