"""Training survives its process: killed runs resume from the newest complete checkpoint.

Each scenario starts the real stage in a child process (`tests.paced` slows each
optimizer step down so the kill lands between two checkpoints), kills it as a preempted
pod is killed, then runs the same config again, unchanged, and checks where it resumed.
The same behaviour is shown through the trainer core, the ZenML pipeline on the local
stack and the Kubeflow component functions, because all three call `trainer.stages.run`.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import (
    REPO_ROOT,
    docs_pipeline_config,
    pairs_dataset,
    tiny_run_config,
    train_at,
    write_jsonl,
    write_run_yaml,
)
from trainer.config import RunConfig
from trainer.stages import load_stage
from trainer.training import CheckpointStore

pytestmark = pytest.mark.slow  # processes, pipelines or the network: see pyproject.toml

PACE_S = 0.4
"""Seconds each optimizer step takes in the child: long enough to kill between saves."""


# --- children (run by `python -m tests.paced`) -------------------------------------------


def child_train(config: str, checkpoint_uri: str, run_name: str | None = None) -> None:
    from trainer.results import RunRef

    run = RunConfig.model_validate_json(config)
    train_datasets, _, _ = load_stage(run)
    ref = RunRef(orchestrator="zenml", name=run_name, id=run_name) if run_name else None
    train_at(run, train_datasets, checkpoint_uri=checkpoint_uri, run=ref)


def child_kfp_train(config: str, folder: str) -> None:
    from pipelines import kfp_pipeline

    data, held_out, model = (SimpleNamespace(path=f"{folder}/{n}") for n in ("t", "e", "m"))
    kfp_pipeline.load_datasets(config, data, held_out)
    kfp_pipeline.train(config, data, held_out, "/not/used", "kfp-run-1", "id-1", "img", model)


def child_pipeline(config_file: str) -> None:
    from pipelines.finetune import finetune_pipeline

    finetune_pipeline.with_options(config_path=config_file)()


# --- helpers ---------------------------------------------------------------------------


def start(target: str, pace_s: float = PACE_S, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.paced", str(pace_s), target, json.dumps(kwargs)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(
    condition: Callable[[], bool], child: subprocess.Popen[str], timeout: float = 240
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if child.poll() is not None:
            raise AssertionError(f"the child ended first:\n{child.stdout.read()}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"timed out:\n{child.communicate()[0]}")
        time.sleep(0.05)


def complete_steps(uri: str) -> list[int]:
    return [checkpoint.step for checkpoint in CheckpointStore(uri).complete()]


def kill_after_checkpoints(child: subprocess.Popen[str], uri: str, count: int) -> list[int]:
    """SIGKILL `child` (no chance to clean up) once `count` checkpoints are complete."""
    wait_until(lambda: len(complete_steps(uri)) >= count, child)
    child.kill()
    child.wait()
    return complete_steps(uri)


def pairs_config(tiny_model_path: Path, pairs_file: Path, **checkpoints: Any) -> RunConfig:
    """60 pairs, batch 8, 2 epochs: 16 optimizer steps."""
    document = tiny_run_config(
        tiny_model_path,
        {"docs": pairs_dataset(pairs_file)},
        checkpoints=checkpoints,
    )
    document["training"]["num_train_epochs"] = 2
    return RunConfig.model_validate(document)


# --- trainer core ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def killed_series(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunConfig, Path, list[int]]:
    """A series whose training was SIGKILLed after its 2nd complete checkpoint (saved
    every 2 steps), shared read-only: each test resumes from its own copy."""
    folder = tmp_path_factory.mktemp("killed")
    rows = [json.loads(line) for line in (REPO_ROOT / "data/stdlib_docs/train.jsonl").open()]
    pairs = write_jsonl(folder / "pairs.jsonl", rows[:60])
    config = pairs_config(tiny_model_path, pairs, every_n_steps=2, keep=8)
    uri = str(folder / "series")
    child = start(
        "tests.test_resume:child_train", config=config.model_dump_json(), checkpoint_uri=uri
    )
    saved = kill_after_checkpoints(child, uri, count=2)
    return config, folder / "series", saved


def resume_copy(killed_series: tuple[RunConfig, Path, list[int]], tmp_path: Path) -> str:
    shutil.copytree(killed_series[1], tmp_path / "series")
    return str(tmp_path / "series")


def test_sigkill_then_rerun_resumes_from_the_newest_complete_checkpoint(
    killed_series: tuple[RunConfig, Path, list[int]], tmp_path: Path
) -> None:
    config, _, saved = killed_series
    uri = resume_copy(killed_series, tmp_path)
    assert saved[-1] >= 4 and CheckpointStore(uri).finished() is None

    train_datasets, _, _ = load_stage(config)
    resumed = train_at(config, train_datasets, checkpoint_uri=uri)

    summary = resumed.summary
    assert summary.resume.resumed
    assert summary.resume.from_step == saved[-1]
    assert summary.resume.checkpoint == f"{uri}/checkpoint-{saved[-1]}"
    assert summary.global_step == summary.planned_steps == 16
    # The resumed history continues the checkpoint's: every step logged once, none twice.
    assert [row["step"] for row in summary.history if "loss" in row] == list(range(1, 17))
    assert CheckpointStore(uri).finished().step == 16


def test_resume_is_exact(killed_series: tuple[RunConfig, Path, list[int]], tmp_path: Path) -> None:
    """An interrupted and resumed training ends with the very weights of an uninterrupted
    one: the checkpoint holds optimizer, scheduler, RNG states and the sampler position."""
    import torch

    config = killed_series[0]
    train_datasets, _, _ = load_stage(config)
    straight = train_at(config, train_datasets, checkpoint_uri=str(tmp_path / "straight"))
    resumed = train_at(config, train_datasets, checkpoint_uri=resume_copy(killed_series, tmp_path))

    assert resumed.summary.resume.resumed
    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)


def test_sigkilled_holders_lease_is_taken_over_by_the_rerun(
    killed_series: tuple[RunConfig, Path, list[int]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The killed child's lease is still in the series: a rerun on this host sees its
    process gone; on another node (another host name) the lease expires after its
    timeout without a heartbeat. Either way the rerun takes over and resumes."""
    config, _, saved = killed_series
    uri = resume_copy(killed_series, tmp_path)
    (lease_file,) = Path(uri).glob("LEASE-*.json")
    record = json.loads(lease_file.read_text())
    assert not record["released"]
    # As if the holder ran elsewhere with checkpoints.lease.timeout_s: 1 (the holder's
    # own timeout decides when its lease expires).
    lease_file.write_text(json.dumps({**record, "host": "preempted-node", "timeout_s": 1.0}))
    time.sleep(1.2)

    train_datasets, _, _ = load_stage(config)
    with caplog.at_level("INFO", logger="trainer.training.lease"):
        resumed = train_at(config, train_datasets, checkpoint_uri=uri)

    assert "sent no heartbeat for" in caplog.text and "taking it over" in caplog.text
    assert resumed.summary.resume.from_step == saved[-1]
    assert resumed.summary.global_step == 16


def test_an_interrupted_series_is_not_resumed_by_a_different_training(
    killed_series: tuple[RunConfig, Path, list[int]], tmp_path: Path
) -> None:
    """Interrupted with one learning rate, re-run with another on the same uri: refused,
    never "resuming from global step N" of the other training."""
    from trainer.training import SeriesMismatch

    config, _, saved = killed_series
    uri = resume_copy(killed_series, tmp_path)
    other = config.model_copy(update={"training": {**config.training, "learning_rate": 1e-3}})
    train_datasets, _, _ = load_stage(other)
    with pytest.raises(
        SeriesMismatch, match=r"It differs in training\.learning_rate: [^ ]+ -> 0\.001"
    ):
        train_at(other, train_datasets, checkpoint_uri=uri)
    assert complete_steps(uri) == saved


def test_two_runs_at_once_on_one_series_exactly_one_trains(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    uri = str(tmp_path / "series")
    config = pairs_config(tiny_model_path, pairs_file, every_n_steps=4).model_dump_json()
    # Slow steps (16 x 1.5 s): the second run starts while the first still trains.
    children = {
        name: start("tests.test_resume:child_train", pace_s=1.5, config=config,
                    checkpoint_uri=uri, run_name=name)
        for name in ("run-a", "run-b")
    }  # fmt: skip
    outputs = {name: child.communicate(timeout=400)[0] for name, child in children.items()}
    codes = {name: child.returncode for name, child in children.items()}

    trained = [name for name, code in codes.items() if code == 0]
    assert len(trained) == 1, outputs
    (refused,) = set(children) - set(trained)
    assert (
        f"LeaseHeld: the checkpoint series at {uri} is being trained by ZenML run {trained[0]} (host"
        in (outputs[refused])
    )
    assert "training from scratch" not in outputs[refused]
    assert CheckpointStore(uri).finished().run == f"ZenML run {trained[0]}"


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(
    killed_series: tuple[RunConfig, Path, list[int]], tmp_path: Path
) -> None:
    config, _, saved = killed_series
    uri = resume_copy(killed_series, tmp_path)
    newest = Path(uri) / f"checkpoint-{saved[-1]}" / "optimizer.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    train_datasets, _, _ = load_stage(config)
    resumed = train_at(config, train_datasets, checkpoint_uri=uri)

    assert resumed.summary.resume.from_step == saved[-2]
    assert resumed.summary.global_step == 16


def test_resume_from_a_named_checkpoint(
    killed_series: tuple[RunConfig, Path, list[int]], tmp_path: Path
) -> None:
    config, _, saved = killed_series
    uri = resume_copy(killed_series, tmp_path)
    resume = {"resume": f"{uri}/checkpoint-{saved[0]}"}
    named = config.model_copy(update={"checkpoints": config.checkpoints.model_copy(update=resume)})
    train_datasets, _, _ = load_stage(named)
    resumed = train_at(named, train_datasets, checkpoint_uri=uri)
    assert resumed.summary.resume.from_step == saved[0]
    assert resumed.summary.resume.reason == "named by checkpoints.resume"
    assert resumed.summary.global_step == 16


def test_sigterm_saves_a_checkpoint_at_the_step_it_arrived_and_exits_non_zero(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    uri = str(tmp_path / "series")
    config = pairs_config(tiny_model_path, pairs_file, every_n_steps=4)
    child = start(
        "tests.test_resume:child_train", config=config.model_dump_json(), checkpoint_uri=uri
    )
    wait_until(lambda: complete_steps(uri) == [4], child)
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=120)

    assert child.returncode != 0
    assert "received SIGTERM: saving a checkpoint when the current step ends" in output
    match = re.search(
        r"TrainingInterrupted: training stopped by SIGTERM at global step (\d+) of 16", output
    )
    assert match, output
    stopped_at = int(match.group(1))
    assert stopped_at % 4 != 0  # not a regular save point: the signal caused this save
    assert complete_steps(uri)[-1] == stopped_at

    train_datasets, _, _ = load_stage(config)
    resumed = train_at(config, train_datasets, checkpoint_uri=uri)
    assert resumed.summary.resume.from_step == stopped_at
    assert resumed.summary.global_step == 16


def test_finished_series_trains_afresh_and_never_clears(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    uri = str(tmp_path / "series")
    config = pairs_config(tiny_model_path, pairs_file, every_n_steps=4)
    train_datasets, _, _ = load_stage(config)
    train_at(config, train_datasets, checkpoint_uri=uri)

    again = train_at(config, train_datasets, checkpoint_uri=uri)
    assert not again.summary.resume.resumed
    assert "was finished at step 16; a finished training is not resumed" in (
        again.summary.resume.reason
    )
    assert again.summary.checkpoints.saved_steps == [4, 8, 12, 16]

    # A left-over checkpoint is ignored (and removed) when resume is 'never'.
    CheckpointStore(uri).reset()
    store = CheckpointStore(uri)
    store.publish(_fake_checkpoint(tmp_path, 12), 12)
    never = config.model_copy(
        update={"checkpoints": config.checkpoints.model_copy(update={"resume": "never"})}
    )
    fresh = train_at(never, train_datasets, checkpoint_uri=uri)
    assert fresh.summary.resume.reason == "checkpoints.resume is 'never'"
    assert min(row["step"] for row in fresh.summary.history) == 1


def _fake_checkpoint(tmp_path: Path, step: int) -> Path:
    folder = tmp_path / "fake" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


# --- the ZenML pipeline on the local stack ---------------------------------------------


def test_zenml_pipeline_killed_then_rerun_resumes(
    zenml_client: Any, tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    from zenml.enums import ExecutionStatus

    from pipelines.finetune import finetune_pipeline

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["checkpoints"] = {"every_n_steps": 2}
    config_file = write_run_yaml(
        tmp_path / "run.yaml", document, enable_cache=False, model={"name": "resumable"}
    )
    series_root = Path(zenml_client.active_stack.artifact_store.path) / "checkpoints"

    def complete() -> list[Path]:
        return sorted(series_root.glob("finetune_pipeline/resumable/*/checkpoint-*/COMPLETE.json"))

    child = start("tests.test_resume:child_pipeline", config_file=str(config_file))
    wait_until(lambda: len(complete()) >= 2, child)
    child.kill()
    child.wait()
    killed = zenml_client.list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    newest = max(int(path.parent.name.split("-")[1]) for path in complete())

    rerun = zenml_client.get_pipeline_run(
        finetune_pipeline.with_options(config_path=str(config_file))().id
    )

    assert rerun.status == ExecutionStatus.COMPLETED
    resume = rerun.steps["train"].run_metadata["resume"]
    assert resume["resumed"] is True
    assert resume["from_step"] == newest
    assert resume["from_run"] == f"ZenML run {killed.name}"
    training = rerun.steps["train"].outputs["training"][0].load()
    assert training.global_step == training.planned_steps == 6
    log = _step_log(rerun.steps["train"])
    assert f"resuming from global step {newest}" in log
    # The killed run could not report its end; the rerun names it and how to remove it.
    assert zenml_client.get_pipeline_run(killed.id).status == ExecutionStatus.RUNNING
    assert rerun.steps["train"].run_metadata["interrupted_run"] == killed.name
    assert f"`zenml pipeline runs delete {killed.name}`" in log


def _step_log(step: Any) -> str:
    """The step's log as the dashboard shows it (files in the local artifact store)."""
    texts = []
    for logs in step.log_collection or []:
        path = Path(logs.uri)
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        texts += [file.read_text(errors="replace") for file in files]
    return "\n".join(texts)


# --- the Kubeflow component functions --------------------------------------------------


def test_kfp_train_component_resumes_with_a_local_checkpoint_uri(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    from pipelines import kfp_pipeline

    uri = str(tmp_path / "series")
    config = pairs_config(tiny_model_path, pairs_file, uri=uri, every_n_steps=2)
    folder = tmp_path / "artifacts"
    child = start(
        "tests.test_resume:child_kfp_train", config=config.model_dump_json(), folder=str(folder)
    )
    wait_until(lambda: len(complete_steps(uri)) >= 1, child)
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=120)
    assert child.returncode != 0, output
    stopped_at = complete_steps(uri)[-1]

    data, held_out, model = (SimpleNamespace(path=str(folder / n)) for n in ("t", "e", "m"))
    summary = kfp_pipeline.train(
        config.model_dump_json(),
        data,
        held_out,
        "minio://unused",
        "kfp-run-2",
        "id-2",
        "img",
        model,
    )

    assert summary["resume"]["resumed"] is True
    assert summary["resume"]["from_step"] == stopped_at
    assert summary["resume"]["from_run"] == "Kubeflow run kfp-run-1"
    assert summary["global_step"] == 16
    assert (Path(model.path) / "modules.json").is_file()
