"""The push_to_hub step in a real (local) pipeline run, against the loopback fake Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from sentence_transformers import SentenceTransformer
from zenml import pipeline, step
from zenml.types import MarkdownString

from steps.materializers import SentenceTransformerMaterializer
from steps.push_to_hub import push_to_hub
from tests.hub_server import FakeHub, use_fake_hub
from trainer.config import RunConfig
from trainer.models import load_saved_model
from trainer.results import Evaluation

TOKEN = "hf_StepTestTokenNeverInMetadata01234567"
REPO = "acme/step-embedder"
METRIC = "docs-information_retrieval_cosine_ndcg@10"
CARD = "---\nlicense: apache-2.0\nlibrary_name: sentence-transformers\n---\n# card\n"


@step(output_materializers=SentenceTransformerMaterializer)
def saved_model(path: str) -> Annotated[SentenceTransformer, "model"]:
    """The model folder as the train step's output (with its `adapter/`, if it has one)."""
    return load_saved_model(path, device="cpu")


@step
def card() -> Annotated[MarkdownString, "model_card"]:
    return MarkdownString(CARD)


@pipeline(enable_cache=False)
def push_only(config: RunConfig, path: str, evaluation: Evaluation) -> None:
    push_to_hub(
        config=config, model=saved_model(path=path), evaluation=evaluation, model_card=card()
    )


def evaluation(base: float, tuned: float) -> Evaluation:
    return Evaluation(
        primary_metric=METRIC,
        base={METRIC: base},
        finetuned={METRIC: tuned},
        improvement={METRIC: tuned - base},
    )


@pytest.mark.slow
def test_gate_decides_and_only_a_passing_model_is_pushed(
    zenml_client: Any, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub(valid_tokens={TOKEN}) as hub, use_fake_hub(monkeypatch, hub):
        config = RunConfig.model_validate(
            {
                "model": {"name_or_path": str(tiny_model_path)},
                "datasets": {"docs": {"source": {"path": "docs.jsonl"}}},
                "hub": {"enabled": True, "repo_id": REPO, "endpoint": hub.url},
            }
        )

        failed = push_only(
            config=config, path=str(tiny_model_path), evaluation=evaluation(0.5, 0.4)
        )
        outcome = failed.steps["push_to_hub"].outputs["hub_push"][0].load()
        assert outcome.pushed is False
        assert "min_improvement" in outcome.reason
        assert not hub.requests  # a failed gate makes no request and reads no secret

        zenml_client.create_secret(config.hub.secret_name, values={"HF_TOKEN": TOKEN})
        passed = push_only(
            config=config, path=str(tiny_model_path), evaluation=evaluation(0.4, 0.5)
        )
        step_run = passed.steps["push_to_hub"]
        outcome = step_run.outputs["hub_push"][0].load()

    assert outcome.pushed is True and outcome.no_changes is False
    assert outcome.commit_url == f"{hub.url}/{REPO}/commit/{hub.head(REPO).oid}"
    assert hub.files(REPO)["README.md"] == CARD.encode()
    assert "model.safetensors" in hub.files(REPO)
    assert hub.head(REPO).message.endswith(f"(ZenML run {passed.name})")
    assert step_run.run_metadata["hub_push"]["repo_id"] == REPO
    assert TOKEN not in repr(step_run.run_metadata)

    # Nothing the run left behind holds the token: step logs, artifacts and
    # visualizations all live under the artifact store; the card is what the Hub got.
    artifact_store = Path(zenml_client.active_stack.artifact_store.path)
    scanned = [path for path in artifact_store.rglob("*") if path.is_file()]
    assert any("logs" in path.parts for path in scanned), "step logs were not scanned"
    leaks = [path for path in scanned if TOKEN.encode() in path.read_bytes()]
    assert leaks == []
    assert TOKEN.encode() not in hub.files(REPO)["README.md"]


@pytest.mark.slow
def test_the_push_step_publishes_the_adapter_a_run_kept(
    zenml_client: Any, tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model.adapter.export: adapter`: the model goes through the artifact store (the
    materializer) into the push step, and the Hub gets `adapter/` beside the weights."""
    from tests.conftest import build_adapted_model

    folder = build_adapted_model(tiny_model_path, tmp_path / "adapted")
    with FakeHub(valid_tokens={TOKEN}) as hub, use_fake_hub(monkeypatch, hub):
        config = RunConfig.model_validate(
            {
                "model": {"name_or_path": str(tiny_model_path), "adapter": {"export": "adapter"}},
                "datasets": {"docs": {"source": {"path": "docs.jsonl"}}},
                "hub": {"enabled": True, "repo_id": REPO, "endpoint": hub.url},
            }
        )
        names = {secret.name for secret in zenml_client.list_secrets(size=100).items}
        created = config.hub.secret_name not in names  # the other test may have made it
        if created:
            zenml_client.create_secret(config.hub.secret_name, values={"HF_TOKEN": TOKEN})
        try:
            run = push_only(config=config, path=str(folder), evaluation=evaluation(0.4, 0.5))
        finally:
            if created:
                zenml_client.delete_secret(config.hub.secret_name)
        assert run.steps["push_to_hub"].outputs["hub_push"][0].load().pushed
        files = hub.files(REPO)
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors"):
        assert files[name] == (folder / name).read_bytes()
