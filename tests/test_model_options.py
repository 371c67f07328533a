"""Matryoshka, adaptive-layer and 2D-Matryoshka losses from the config, their preflight
checks against the base model, the primary metric per embedding dimension (evaluation,
card, report), and pooling / normalization for plain transformers checkpoints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import (
    TINY_HIDDEN,
    build_adapted_model,
    pairs_dataset,
    save_tiny_bert,
    tiny_run_config,
)
from trainer.config import POOLING_MODES, LossConfig, ModelConfig, RunConfig
from trainer.preflight import preflight


def _loss(**fields: Any) -> LossConfig:
    return LossConfig.model_validate({"name": "MultipleNegativesRankingLoss", **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"matryoshka_dims": [32, 0]}, "dimensions must be positive, got [0]"),
        ({"matryoshka_dims": [32, -8]}, "dimensions must be positive, got [-8]"),
        ({"matryoshka_dims": [32, 16, 32]}, "dimensions must be distinct, [32] given more"),
        ({"matryoshka_dims": []}, "give at least one dimension"),
        (
            {"matryoshka_dims": [32, 16], "matryoshka_weights": [1.0]},
            "matryoshka_weights has 1 weight(s) for 2 matryoshka_dims",
        ),
        ({"matryoshka_weights": [1.0]}, "matryoshka_weights needs matryoshka_dims"),
        ({"n_dims_per_step": 1}, "n_dims_per_step needs matryoshka_dims"),
        ({"matryoshka_dims": [32], "n_dims_per_step": 0}, "n_dims_per_step 0: use -1"),
        ({"adaptive_layer": {"n_layers_per_step": 0}}, "n_layers_per_step 0: use -1"),
        ({"adaptive_layer": {"n_layers_per_step": -2}}, "n_layers_per_step -2: use -1"),
        (
            {"adaptive_layer": {"layer_weighting": "cubic"}},
            "'uniform', 'log' or 'linear'",
        ),
        ({"adaptive_layer": {"kl_temperature": -1}}, "greater than or equal to 0"),
        (
            {"adaptive_layer": {}, "cached": True},
            "adaptive_layer cannot wrap cached MultipleNegativesRankingLoss",
        ),
        ({"adaptive_layer": {"n_layer_per_step": 1}}, "n_layer_per_step"),
    ],
)
def test_bad_matryoshka_and_adaptive_options_name_the_problem(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        _loss(**fields)


def test_mega_batch_margin_needs_its_plain_version_under_adaptive_layer() -> None:
    with pytest.raises(ValidationError, match="use_mini_batched_version: false"):
        LossConfig(name="MegaBatchMarginLoss", adaptive_layer={})  # type: ignore[arg-type]
    LossConfig(
        name="MegaBatchMarginLoss",
        params={"use_mini_batched_version": False},
        adaptive_layer={},  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("MatryoshkaLoss", "set loss.matryoshka_dims"),
        ("AdaptiveLayerLoss", "set loss.adaptive_layer"),
        ("Matryoshka2dLoss", "set both loss.matryoshka_dims and loss.adaptive_layer"),
    ],
)
def test_a_loss_modifier_named_as_the_loss_says_which_field_asks_for_it(
    name: str, fix: str
) -> None:
    with pytest.raises(ValidationError, match=f"{name} wraps another loss.*{fix}"):
        LossConfig(name=name)


@pytest.mark.parametrize(
    ("fields", "wrapper"),
    [
        ({"matryoshka_dims": [32, 16, 8]}, "MatryoshkaLoss"),
        ({"adaptive_layer": {"n_layers_per_step": -1}}, "AdaptiveLayerLoss"),
        ({"matryoshka_dims": [32, 8], "adaptive_layer": {}}, "Matryoshka2dLoss"),
        ({}, "MultipleNegativesRankingLoss"),
    ],
)
def test_the_configured_wrapper_is_built_with_its_params(
    tiny_model_path: Path, fields: dict[str, Any], wrapper: str
) -> None:
    from sentence_transformers import SentenceTransformer

    from trainer.training import build_loss

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    loss = build_loss(model, _loss(**fields))
    assert type(loss).__name__ == wrapper
    if wrapper == "Matryoshka2dLoss":
        assert loss.n_layers_per_step == 1  # sentence-transformers' defaults where unset
        assert list(loss.loss.matryoshka_dims) == [32, 8]
        assert loss.loss.n_dims_per_step == 1
    if wrapper == "MatryoshkaLoss":
        assert list(loss.matryoshka_dims) == [32, 16, 8]
    if wrapper == "AdaptiveLayerLoss":
        assert loss.n_layers_per_step == -1


def test_weights_and_steps_reach_the_matryoshka_loss(tiny_model_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from trainer.training import build_loss

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    loss = build_loss(
        model,
        _loss(matryoshka_dims=[32, 8], matryoshka_weights=[2.0, 1.0], n_dims_per_step=1),
    )
    assert list(loss.matryoshka_weights) == [2.0, 1.0]
    assert loss.n_dims_per_step == 1


def _config(model: Path, pairs: Path, loss: dict[str, Any], **extra: Any) -> RunConfig:
    return RunConfig.model_validate(
        tiny_run_config(
            model,
            {"docs": pairs_dataset(pairs, eval_size=0.25, loss=loss)},
            gate={"min_improvement": None},
            **extra,
        )
    )


def _problems(config: RunConfig) -> dict[str, str]:
    report = preflight(config)
    return {problem.field: problem.message for problem in report.problems}


def test_preflight_refuses_dims_beyond_the_embedding_dimension(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    loss = {"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [64, 32, 16]}
    problems = _problems(_config(tiny_model_path, pairs_file, loss))
    assert problems == {
        "datasets.docs.loss.matryoshka_dims": f"[64] exceed the base model's embedding "
        f"dimension {TINY_HIDDEN}; every dimension must be at most {TINY_HIDDEN}"
    }


def test_preflight_refuses_more_sampled_layers_than_the_model_has(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    loss = {"name": "MultipleNegativesRankingLoss", "adaptive_layer": {"n_layers_per_step": 2}}
    problems = _problems(_config(tiny_model_path, pairs_file, loss))
    assert problems == {
        "datasets.docs.loss.adaptive_layer.n_layers_per_step": "2 exceeds the 1 earlier "
        "layer(s) of the base model (2 layers, the last one is always trained): use at "
        "most 1, or -1 for all"
    }


def test_preflight_passes_options_that_fit_the_model(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    loss = {
        "name": "MultipleNegativesRankingLoss",
        "matryoshka_dims": [32, 16],
        "adaptive_layer": {"n_layers_per_step": 1},
    }
    report = preflight(_config(tiny_model_path, pairs_file, loss))
    assert report.ok, report.problems
    assert f"model options (embedding dimension {TINY_HIDDEN}, 2 layers)" in report.checked


def test_matryoshka_config_dims_are_the_union_largest_first(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "a": pairs_dataset(pairs_file, loss={"name": "CoSENTLoss"}),
                "b": pairs_dataset(
                    pairs_file,
                    loss={"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [8, 32]},
                ),
                "c": pairs_dataset(
                    pairs_file,
                    loss={"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [16, 8]},
                ),
            },
        )
    )
    assert config.matryoshka_dims == [32, 16, 8]


@pytest.mark.slow
def test_matryoshka_2d_trains_and_is_scored_per_dimension(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """Matryoshka2dLoss trains the tiny model; the evaluation scores the primary metric at
    each trained dimension for both models; the card and the HTML report show the table."""
    import torch

    from trainer.data import load_datasets
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.models import load_model
    from trainer.release import render_model_card
    from trainer.reports import render_comparison_html
    from trainer.stages import evaluate_stage
    from trainer.training import train

    loss = {
        "name": "MultipleNegativesRankingLoss",
        "matryoshka_dims": [32, 16, 8],
        "adaptive_layer": {"n_layers_per_step": 1},
    }
    config = _config(tiny_model_path, pairs_file, loss)
    train_data, held_out = load_datasets(config)
    base = load_model(config.model)
    result = train(config, train_data, held_out, output_dir=tmp_path / "ckpt")
    assert result.summary.global_step > 0
    assert any(
        not torch.equal(value, base.state_dict()[key])
        for key, value in result.model.state_dict().items()
    )

    evaluation = evaluate_stage(config, result.model, held_out, base_model=base)
    primary = evaluation.primary_metric
    assert primary is not None
    assert [score.dimension for score in evaluation.by_dimension] == [32, 16, 8]
    full = evaluation.by_dimension[0]
    assert (full.base, full.finetuned) == (evaluation.base[primary], evaluation.finetuned[primary])
    # Each smaller dimension is the same evaluator on truncated embeddings.
    evaluator = build_evaluators(config, held_out)[0]
    for score in evaluation.by_dimension[1:]:
        with result.model.truncate_embeddings(score.dimension):
            expected = run_evaluators(result.model, [evaluator])[primary]
        assert score.finetuned == pytest.approx(expected)
        with base.truncate_embeddings(score.dimension):
            assert score.base == pytest.approx(run_evaluators(base, [evaluator])[primary])
    assert len({score.finetuned for score in evaluation.by_dimension}) > 1

    card = render_model_card(
        config, evaluation=evaluation, training=result.summary, data=_data_report(config)
    )
    assert "### Per embedding dimension" in card
    for score in evaluation.by_dimension:
        assert f"| {score.dimension} | {round(score.base or 0, 4)} |" in card
    report = render_comparison_html(evaluation)
    assert "per embedding dimension" in report
    assert report.count("<tr><td") == len(evaluation.by_dimension)


def _normalized_copy(path: Path, seed: int) -> Any:
    """The tiny model with its weights nudged (another model) and a Normalize module:
    unit embeddings whose truncations are not unit (the library does not re-normalize)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    model = SentenceTransformer(str(path), device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    model.append(Normalize())
    return model


def test_scores_per_dimension_equal_the_librarys_truncate_dim_from_one_encoding(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    """Each model encodes the evaluator's texts once; the metric at every dimension is
    exactly what the evaluator gives a model encoding with `truncate_dim` set."""
    from trainer.data import load_datasets
    from trainer.evaluation import build_evaluators, primary_metric, score_by_dimension
    from trainer.results import Evaluation

    loss = {"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [32, 16, 8]}
    config = _config(tiny_model_path, pairs_file, loss)
    _, held_out = load_datasets(config)
    evaluator = build_evaluators(config, held_out)[0]
    base, tuned = _normalized_copy(tiny_model_path, 1), _normalized_copy(tiny_model_path, 2)
    evaluator(base)  # as the evaluation's comparison did: the evaluator names its metric
    empty = Evaluation(primary_metric=primary_metric(evaluator))  # no full-size score to reuse
    encoded = {"base": 0, "finetuned": 0}

    def counter(key: str) -> Any:
        def count(_module: Any, _inputs: Any, output: Any) -> None:
            encoded[key] += int(output["sentence_embedding"].shape[0])

        return count

    hooks = [
        base.register_forward_hook(counter("base")),
        tuned.register_forward_hook(counter("finetuned")),
    ]
    scores = score_by_dimension(base, tuned, evaluator, [8, 32, 16], empty)
    for hook in hooks:
        hook.remove()

    texts = len(evaluator.queries) + len(evaluator.corpus)
    assert encoded == {"base": texts, "finetuned": texts}  # once, not once per dimension
    assert [score.dimension for score in scores] == [32, 16, 8]
    primary = primary_metric(evaluator)
    for score in scores:
        for model, value in ((base, score.base), (tuned, score.finetuned)):
            model.truncate_dim = score.dimension  # the library's own truncation, re-encoding
            assert value == evaluator(model)[primary]
            model.truncate_dim = None
    assert len({score.finetuned for score in scores}) > 1


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("task", [None, "query"])
def test_shared_encoding_cuts_embeddings_as_the_library_does(
    tiny_model_path: Path, normalize: bool, task: str | None
) -> None:
    import torch

    from trainer.evaluation.dimensions import shared_encoding

    model = _normalized_copy(tiny_model_path, 3)
    texts = ["open a file", "sort a list in place", "x", "read a file line by line " * 5]
    encode = model.encode_query if task else model.encode

    def embeddings(dimension: int | None) -> torch.Tensor:
        return encode(
            texts,
            truncate_dim=dimension,
            normalize_embeddings=normalize,
            convert_to_tensor=True,
            batch_size=2,
        )

    expected = {dimension: embeddings(dimension) for dimension in (None, 16, 4)}
    with shared_encoding(model) as cache:
        for dimension in (16, None, 4):
            assert torch.equal(embeddings(dimension), expected[dimension])
        assert len(cache) == 1
    assert "_inference" not in vars(model)  # the model is left as it was


def _data_report(config: RunConfig) -> Any:
    from trainer.data import check_data

    return check_data(config).report


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss",
    [
        {"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [32, 8]},
        {"name": "CoSENTLoss", "adaptive_layer": {"n_layers_per_step": -1}},
    ],
    ids=["matryoshka", "adaptive_layer"],
)
def test_each_wrapper_trains_a_few_steps(
    tiny_model_path: Path, tmp_path: Path, loss: dict[str, Any]
) -> None:
    from tests.conftest import write_jsonl
    from trainer.data import load_datasets
    from trainer.training import train

    rows = [
        {"query": f"query {i} about topic {i % 4}", "document": f"document {i} on {i % 4}"}
        | ({"score": (i % 5) / 4} if loss["name"] == "CoSENTLoss" else {})
        for i in range(24)
    ]
    pairs = write_jsonl(tmp_path / "rows.jsonl", rows)
    dataset = pairs_dataset(pairs, loss=loss)
    if loss["name"] == "CoSENTLoss":
        dataset["columns"] = {**dataset["columns"], "score": "score"}
    config = RunConfig.model_validate(tiny_run_config(tiny_model_path, {"docs": dataset}))
    train_data, _ = load_datasets(config)
    result = train(config, train_data, output_dir=tmp_path / "ckpt")
    assert result.summary.global_step == 3
    assert result.summary.train_loss is not None


# Pooling for plain transformers checkpoints.


def test_pooling_modes_are_sentence_transformers_own() -> None:
    from sentence_transformers.sentence_transformer.modules import Pooling

    assert tuple(POOLING_MODES) == tuple(Pooling.POOLING_MODES)


@pytest.fixture(scope="module")
def plain_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BertModel saved by transformers alone: config.json, weights, tokenizer, no
    modules.json."""
    target = save_tiny_bert(tmp_path_factory.mktemp("plain") / "bert")
    assert not (target / "modules.json").exists()
    return target


def test_plain_checkpoint_gets_the_configured_pooling_and_normalization(
    plain_bert: Path,
) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from trainer.models import load_model

    model = load_model(
        ModelConfig(name_or_path=str(plain_bert), pooling="cls", normalize=True, max_seq_length=32)
    )
    kinds = [type(module).__name__ for module in model]
    assert kinds == ["Transformer", "Pooling", "Normalize"]
    assert model[1].pooling_mode == "cls"
    texts = ["open a file", "sort a list in place"]
    embeddings = model.encode(texts, convert_to_tensor=True)

    # The same thing by hand with transformers: the [CLS] token's state, unit length.
    tokenizer = AutoTokenizer.from_pretrained(str(plain_bert))
    bert = AutoModel.from_pretrained(str(plain_bert)).eval()
    with torch.no_grad():
        states = bert(**tokenizer(texts, padding=True, return_tensors="pt")).last_hidden_state
    expected = torch.nn.functional.normalize(states[:, 0], dim=-1)
    assert torch.allclose(embeddings.cpu(), expected, atol=1e-5)


def test_several_pooling_modes_concatenate(plain_bert: Path, pairs_file: Path) -> None:
    from trainer.models import load_model, model_facts

    config = ModelConfig(name_or_path=str(plain_bert), pooling=["mean", "max"])
    model = load_model(config)
    assert model.get_embedding_dimension() == 2 * TINY_HIDDEN
    assert len(model) == 2  # no Normalize unless asked for
    facts = model_facts(config)
    assert facts is not None and not facts.sentence_transformer
    assert facts.embedding_dimension == 2 * TINY_HIDDEN
    # ... so Matryoshka dims are checked against the pooled size.
    loss = {"name": "MultipleNegativesRankingLoss", "matryoshka_dims": [64, 16]}
    run = _config(plain_bert, pairs_file, loss).model_copy(update={"model": config})
    assert preflight(run).ok


def test_a_plain_checkpoint_without_pooling_settings_loads_as_before(plain_bert: Path) -> None:
    from trainer.models import load_model

    model = load_model(ModelConfig(name_or_path=str(plain_bert)))
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling"]
    assert model[1].pooling_mode == "mean"


def test_pooling_on_a_sentence_transformer_folder_is_refused(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    run = _config(tiny_model_path, pairs_file, {"name": "MultipleNegativesRankingLoss"})
    model = run.model.model_copy(update={"pooling": "cls", "normalize": False})
    problems = _problems(run.model_copy(update={"model": model}))
    where = f"{str(tiny_model_path)!r} is a SentenceTransformer folder (modules.json) with mean"
    assert problems == {
        "model.pooling": f"{where} pooling; model.pooling applies to plain transformers "
        "checkpoints only: remove it",
        "model.normalize": f"{where} pooling and normalization; model.normalize applies to "
        "plain transformers checkpoints only: remove it",
    }


@pytest.mark.parametrize(
    ("pooling", "message"),
    [
        ("avg", "Input should be 'cls', 'max', 'mean', 'mean_sqrt_len_tokens'"),
        ([], "give one or more distinct modes of: cls, max, mean"),
        (["mean", "mean"], "give one or more distinct modes"),
    ],
)
def test_unknown_or_repeated_pooling_modes_are_refused(pooling: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelConfig(name_or_path="x", pooling=pooling)


# LoRA adapters.


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        ({"r": 0}, "greater than 0"),
        ({"target_modules": []}, "name the modules to adapt"),
        ({"type": "ia3"}, "Input should be 'lora'"),
        ({"dropout": 1.0}, "less than 1"),
    ],
)
def test_bad_adapter_settings_name_the_problem(adapter: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ModelConfig(name_or_path="x", adapter=adapter)  # type: ignore[arg-type]


def test_only_the_adapter_is_trainable_and_merging_keeps_the_embeddings(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from trainer.models import has_adapter, load_trainable_model, merge_adapter

    config = ModelConfig(
        name_or_path=str(tiny_model_path),
        adapter={"r": 4, "target_modules": ["query", "value"]},  # type: ignore[arg-type]
    )
    model = load_trainable_model(config)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert {name.split(".")[-4] for name in trainable} == {"query", "value"}
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: make the adapter do something
            torch.nn.init.normal_(parameter)
    texts = ["open a file", "sort a list in place"]
    adapted = model.encode(texts, convert_to_tensor=True)

    merge_adapter(model)
    assert not has_adapter(model)
    assert torch.allclose(model.encode(texts, convert_to_tensor=True), adapted, atol=1e-5)
    model.save(str(tmp_path / "merged"))
    loaded = SentenceTransformer(str(tmp_path / "merged"), device="cpu")
    assert torch.allclose(loaded.encode(texts, convert_to_tensor=True), adapted, atol=1e-5)


class _StopAfter:
    """A Trainer callback that fails the run at the end of step `step`."""

    def __new__(cls, step: int) -> Any:
        from transformers import TrainerCallback

        class Stop(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if state.global_step >= step:
                    raise RuntimeError("preempted")

        return Stop()


@pytest.mark.slow
def test_adapter_training_resumes_exactly_and_exports_merged_weights(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """An adapter run resumed from its step-2 checkpoint ends with the very weights of an
    uninterrupted one; the result is merged and loads as a plain SentenceTransformer."""
    import torch
    from sentence_transformers import SentenceTransformer

    from tests.conftest import train_at
    from trainer.models import has_adapter, load_model
    from trainer.stages import load_stage

    document = tiny_run_config(
        tiny_model_path,
        {"docs": pairs_dataset(pairs_file)},
        checkpoints={"every_n_steps": 2, "keep": 8},
    )
    document["model"]["adapter"] = {"r": 4, "alpha": 8, "dropout": 0.0}
    document["training"]["learning_rate"] = 1e-3
    config = RunConfig.model_validate(document)
    train_datasets, _, _ = load_stage(config)
    straight = train_at(config, train_datasets, checkpoint_uri=str(tmp_path / "straight"))
    assert straight.summary.global_step == 8  # 60 pairs, batch 8

    # A run that stops (as a preempted pod would) after its step-4 checkpoint ...
    with pytest.raises(RuntimeError, match="preempted"):
        train_at(
            config,
            train_datasets,
            checkpoint_uri=str(tmp_path / "resumed"),
            callbacks=[_StopAfter(5)],
        )
    # ... continues from it with the same config.
    resumed = train_at(config, train_datasets, checkpoint_uri=str(tmp_path / "resumed"))
    assert resumed.summary.resume.from_step == 4
    assert resumed.summary.global_step == 8
    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)

    # Merged: no adapter layers left, the weights moved, and the folder loads as is.
    assert not has_adapter(straight.model)
    base = load_model(config.model)
    assert base.state_dict().keys() == expected.keys()
    assert any(not torch.equal(base.state_dict()[key], expected[key]) for key in expected)
    straight.model.save(str(tmp_path / "export"))
    texts = ["open a file", "sort a list in place"]
    loaded = SentenceTransformer(str(tmp_path / "export"), device="cpu")
    assert torch.allclose(
        loaded.encode(texts, convert_to_tensor=True),
        straight.model.encode(texts, convert_to_tensor=True),
        atol=1e-6,
    )


TEXTS = ["open a file", "sort a list in place", "read a file line by line"]


def test_the_adapter_alone_is_saved_beside_the_merged_model_and_loads_with_peft(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """`export: adapter`: the folder is the merged model, `adapter/` is peft's standard
    layout (small), and the base + adapter give the merged model's embeddings, through
    `load_with_adapter` and through plain peft (`PeftModel.from_pretrained`)."""
    import torch
    from peft import PeftModel
    from sentence_transformers import SentenceTransformer

    from trainer.models import ADAPTER_FOLDER, has_adapter, load_with_adapter

    folder = build_adapted_model(tiny_model_path, tmp_path / "model")
    adapter = folder / ADAPTER_FOLDER
    assert {path.name for path in adapter.iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    saved = json.loads((adapter / "adapter_config.json").read_text())
    assert saved["peft_type"] == "LORA" and saved["r"] == 4
    assert saved["base_model_name_or_path"] == str(tiny_model_path)
    model_bytes = (folder / "model.safetensors").stat().st_size
    adapter_bytes = (adapter / "adapter_model.safetensors").stat().st_size
    assert adapter_bytes * 100 < model_bytes  # 2 layers x query, value at r=4: a few KB

    merged = SentenceTransformer(str(folder), device="cpu")
    expected = merged.encode(TEXTS, convert_to_tensor=True)
    base = SentenceTransformer(str(tiny_model_path), device="cpu")
    assert not torch.allclose(base.encode(TEXTS, convert_to_tensor=True), expected, atol=1e-3)

    loaded = load_with_adapter(tiny_model_path, adapter, device="cpu")
    assert has_adapter(loaded)
    assert torch.allclose(loaded.encode(TEXTS, convert_to_tensor=True), expected, atol=1e-5)

    # Plain peft on the base transformers model, as the card shows it.
    base[0].auto_model = PeftModel.from_pretrained(
        base[0].auto_model, str(folder), subfolder=ADAPTER_FOLDER
    )
    assert torch.allclose(base.encode(TEXTS, convert_to_tensor=True), expected, atol=1e-5)


def test_a_saved_adapter_travels_with_the_model_through_load_and_save(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """What the artifact store and the Hub push do: load the saved folder, save it again;
    `adapter/` comes out byte for byte (a plain model folder gets none)."""
    from trainer.models import ADAPTER_FOLDER, kept_adapter, load_saved_model, save_model

    folder = build_adapted_model(tiny_model_path, tmp_path / "model")
    again = save_model(load_saved_model(folder, device="cpu"), tmp_path / "again")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        first = (folder / ADAPTER_FOLDER / name).read_bytes()
        assert (again / ADAPTER_FOLDER / name).read_bytes() == first
    plain = load_saved_model(tiny_model_path, device="cpu")
    assert kept_adapter(plain) is None
    assert not (save_model(plain, tmp_path / "plain") / ADAPTER_FOLDER).exists()


def test_every_model_save_goes_through_save_model() -> None:
    """A trained model saved with a bare `model.save` would lose its `adapter/` (the
    artifact store, the cluster's output folder, the Hub push): only `save_model` calls
    it, and the base-model resolver, which saves a foreign artifact (no adapter kept)."""
    from tests.conftest import REPO_ROOT

    allowed = {"trainer/models/adapters.py", "steps/_models.py"}
    calls = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for folder in ("trainer", "steps", "pipelines")
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
        if path.relative_to(REPO_ROOT).as_posix() not in allowed
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"\.save\((?!_)", line) and not line.lstrip().startswith(("#", '"'))
    ]
    assert calls == []


def test_an_adapter_for_another_base_is_refused(tiny_model_path: Path, tmp_path: Path) -> None:
    from trainer.models import ADAPTER_FOLDER, load_with_adapter

    folder = build_adapted_model(tiny_model_path, tmp_path / "model")
    one_layer = ModelConfig(name_or_path=str(tiny_model_path), keep_layers=[0])
    with pytest.raises(
        ValueError,
        match=r"does not fit the base model .*: 4 weight\(s\) with no layer in this base "
        r"\(e\.g\. encoder\.layer\.1\.attention",
    ):
        load_with_adapter(one_layer, folder / ADAPTER_FOLDER, device="cpu")


@pytest.mark.slow
def test_a_trained_adapter_loaded_onto_its_base_gives_the_merged_embeddings(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """A real (tiny) training run with `export: adapter` saves the merged model with
    `adapter/` beside it; the run's base (its model config) + that adapter encode as the
    merged model does."""
    import torch
    from sentence_transformers import SentenceTransformer

    from tests.conftest import train_at
    from trainer.models import ADAPTER_FOLDER, has_adapter, load_with_adapter
    from trainer.stages import load_stage

    document = tiny_run_config(tiny_model_path, {"docs": pairs_dataset(pairs_file)})
    document["model"]["adapter"] = {"r": 4, "alpha": 8, "dropout": 0.0, "export": "adapter"}
    document["training"]["learning_rate"] = 1e-2
    document["output"] = {"dir": str(tmp_path / "run")}
    config = RunConfig.model_validate(document)
    train_datasets, _, _ = load_stage(config)
    trained = train_at(config, train_datasets, checkpoint_uri=str(tmp_path / "checkpoints"))
    assert not has_adapter(trained.model)  # the model itself is merged
    folder = config.output.model_dir
    assert folder is not None and (folder / ADAPTER_FOLDER / "adapter_model.safetensors").is_file()

    merged = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(trained.model.encode(TEXTS, convert_to_tensor=True), merged, atol=1e-6)
    loaded = load_with_adapter(config.model, folder / ADAPTER_FOLDER, device="cpu")
    assert torch.allclose(loaded.encode(TEXTS, convert_to_tensor=True), merged, atol=1e-5)
    base = SentenceTransformer(str(tiny_model_path), device="cpu")
    assert not torch.allclose(base.encode(TEXTS, convert_to_tensor=True), merged, atol=1e-4)


def test_the_adapter_starts_from_the_runs_seed(tiny_model_path: Path) -> None:
    import torch

    from trainer.models import load_trainable_model

    config = ModelConfig(name_or_path=str(tiny_model_path), adapter={"r": 4})  # type: ignore[arg-type]

    def lora(seed: int) -> dict[str, torch.Tensor]:
        model = load_trainable_model(config, seed=seed)
        return {k: v for k, v in model.state_dict().items() if "lora_A" in k}

    torch.manual_seed(123)
    first = lora(7)
    state = torch.random.get_rng_state()
    again, other = lora(7), lora(8)
    assert first and all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global stream is untouched


# Router (asymmetric query / document) models.


def _router_config(model: Path, pairs: Path, **changes: Any) -> dict[str, Any]:
    document = tiny_run_config(model, {"docs": pairs_dataset(pairs)})
    document["model"]["asymmetric"] = True
    document["training"]["router_mapping"] = {"anchor": "query", "positive": "document"}
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if value is None:
            document[section].pop(name, None)
        else:
            document[section][name] = value
    return document


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"model__asymmetric": False},
            "training.router_mapping routes columns to a Router model's query/document "
            "modules, and the base model is not one: set model.asymmetric: true",
        ),
        (
            {"training__router_mapping": None},
            "model.asymmetric: true needs training.router_mapping",
        ),
        (
            {"training__router_mapping": {"anchor": "query", "positive": "passage"}},
            "routes ['passage'] are not query or document",
        ),
        ({"model__adapter": {"r": 4}}, "asymmetric and adapter do not combine"),
    ],
)
def test_router_settings_that_cannot_work_are_refused(
    tiny_model_path: Path, pairs_file: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        RunConfig.model_validate(_router_config(tiny_model_path, pairs_file, **changes))


def test_an_asymmetric_model_refuses_adaptive_layers(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    document = _router_config(tiny_model_path, pairs_file)
    document["datasets"]["docs"]["loss"] = {
        "name": "MultipleNegativesRankingLoss",
        "adaptive_layer": {},
    }
    with pytest.raises(ValidationError, match="an asymmetric model's is a Router"):
        RunConfig.model_validate(document)


@pytest.mark.slow
def test_an_asymmetric_model_trains_its_routes_apart(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from trainer.data import load_datasets
    from trainer.training import train

    document = _router_config(tiny_model_path, pairs_file, training__learning_rate=1e-3)
    config = RunConfig.model_validate(document)
    train_data, _ = load_datasets(config)
    result = train(config, train_data, output_dir=tmp_path / "ckpt")
    model = result.model
    assert type(model[0]).__name__ == "Router"
    assert result.summary.global_step == 8  # 60 pairs, batch 8
    query, passage = (
        model[0].sub_modules[route][0].auto_model.state_dict() for route in ("query", "document")
    )
    assert any(not torch.equal(query[key], passage[key]) for key in query)
    text = ["open a file"]
    as_query = model.encode_query(text, convert_to_tensor=True)
    assert not torch.allclose(as_query, model.encode_document(text, convert_to_tensor=True))
    model.save(str(tmp_path / "router"))
    loaded = SentenceTransformer(str(tmp_path / "router"), device="cpu")
    assert torch.allclose(loaded.encode_query(text, convert_to_tensor=True), as_query, atol=1e-6)
