"""Several training processes on CPU (gloo), through the same code path as several GPUs.

`train_stage` launches torchrun with `distributed.nproc_per_node` ranks running
`trainer.cluster.entrypoint`; the ranks train with DDP and in-batch negatives gathered across
processes, rank 0 alone publishes checkpoints and writes the model. The training is
first stopped by SIGTERM (forwarded to the ranks, which save), then run again: it
resumes, as a retried pod would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sentence_transformers import SentenceTransformer

from tests.conftest import REPO_ROOT, pairs_dataset, tiny_run_config, train_at, write_jsonl
from trainer.config import RunConfig
from trainer.stages import load_stage
from trainer.training import CheckpointStore, TrainedModel

pytestmark = pytest.mark.slow  # processes, pipelines or the network: see pyproject.toml


def child_train(config: str, checkpoint_uri: str) -> None:
    """Run in a child process: the train stage, as the ZenML step runs it."""
    run = RunConfig.model_validate_json(config)
    train_datasets, _, _ = load_stage(run)
    train_at(run, train_datasets, checkpoint_uri=checkpoint_uri)


def ddp_config(model_path: Path, folder: Path) -> RunConfig:
    rows = [json.loads(line) for line in (REPO_ROOT / "data/stdlib_docs/train.jsonl").open()]
    pairs = write_jsonl(folder / "pairs.jsonl", rows[:64])
    document = tiny_run_config(
        model_path,
        {"docs": pairs_dataset(pairs)},
        checkpoints={"every_n_steps": 2},
        distributed={"nproc_per_node": 2},
        output={"dir": str(folder / "out")},
    )
    # 64 pairs / (8 per rank x 2 ranks) = 4 steps per epoch; a learning rate the tiny
    # random model visibly learns with.
    document["training"].update(num_train_epochs=3, learning_rate=1e-3, warmup_steps=0)
    return RunConfig.model_validate(document)


@pytest.fixture(scope="module")
def ddp_run(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunConfig, Path, str, int, TrainedModel]:
    """SIGTERM during a 2-rank training (after its first checkpoint), then the rerun."""
    folder = tmp_path_factory.mktemp("ddp")
    config = ddp_config(tiny_model_path, folder)
    uri = str(folder / "checkpoints" / "series")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tests" / "pacing"), str(REPO_ROOT)]),
        "ST_FINETUNE_TEST_STEP_SECONDS": "0.5",
    }
    probe = "from tests.test_distributed import child_train as c; import sys, json; c(**json.loads(sys.argv[1]))"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            probe,
            json.dumps({"config": config.model_dump_json(), "checkpoint_uri": uri}),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not CheckpointStore(uri).complete():
        assert child.poll() is None, child.stdout.read()
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=180)
    assert child.returncode != 0, output
    stopped = re.search(r"training stopped by SIGTERM at global step (\d+) of 12", output)
    assert stopped, output

    train_datasets, _, _ = load_stage(config)
    trained = train_at(config, train_datasets, checkpoint_uri=uri)
    return config, folder, output, int(stopped.group(1)), trained


def test_two_processes_train_with_ddp_and_gathered_negatives(ddp_run: Any) -> None:
    _, _, output, _, trained = ddp_run
    summary = trained.summary
    assert summary.world_size == 2
    assert summary.global_batch_size == 16  # 8 per rank x 2 ranks
    assert summary.gather_across_devices
    assert summary.global_step == summary.planned_steps == 12
    assert "forwarding SIGTERM to the training processes" in output
    assert "[rank 1]" in output  # both ranks ran


def test_the_loss_went_down(ddp_run: Any) -> None:
    losses = [row["loss"] for row in ddp_run[4].summary.history if "loss" in row]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_rank_zero_alone_writes_one_model_and_one_checkpoint_series(ddp_run: Any) -> None:
    _, folder, _, _, trained = ddp_run
    assert sorted(path.name for path in (folder / "out").iterdir()) == ["model"]
    exported = SentenceTransformer(str(folder / "out" / "model"))
    assert exported.encode(["hello"]).shape == (1, 32)
    assert trained.model.encode(["hello"]).shape == (1, 32)
    series = folder / "checkpoints"
    assert [path.name for path in series.iterdir()] == ["series"]
    # Finished: no checkpoint left, only whose series it is and its released lease.
    left = sorted(path.name for path in (series / "series").iterdir())
    assert [name for name in left if not name.startswith("LEASE-")] == [
        "FINISHED.json",
        "SERIES.json",
    ]


def test_sigterm_saves_and_the_rerun_resumes_under_ddp(ddp_run: Any) -> None:
    _, _, output, stopped_at, trained = ddp_run
    assert f"checkpoint at global step {stopped_at} saved" in output
    resume = trained.summary.resume
    assert resume.resumed and resume.from_step == stopped_at
    assert trained.summary.checkpoints.saved_steps == [
        step for step in range(2, 13, 2) if step > stopped_at
    ]


def test_the_pipeline_trains_with_two_processes_and_improves(
    zenml_client: Any, tiny_model_path: Path, tmp_path: Path
) -> None:
    """The ZenML pipeline on the local stack, `distributed.nproc_per_node: 2` (CPU, gloo):
    the train step runs torchrun, the later steps use rank 0's model."""
    from pipelines.finetune import finetune_pipeline
    from tests.conftest import docs_pipeline_config, write_run_yaml

    rows = [json.loads(line) for line in (REPO_ROOT / "data/stdlib_docs/train.jsonl").open()]
    document = docs_pipeline_config(tiny_model_path, write_jsonl(tmp_path / "p.jsonl", rows[:96]))
    document["distributed"] = {"nproc_per_node": 2}
    document["training"].update(num_train_epochs=4, learning_rate=1e-3, warmup_steps=0)
    path = write_run_yaml(tmp_path / "run.yaml", document, model={"name": "ddp-embedder"})
    run = zenml_client.get_pipeline_run(
        finetune_pipeline.with_options(config_path=str(path), enable_cache=False)().id
    )
    assert run.status == "completed"
    training = run.steps["train"].outputs["training"][0].load()
    assert training.world_size == 2 and training.gather_across_devices
    assert run.steps["train"].run_metadata["global_batch_size"] == 16
    evaluation = run.steps["evaluate"].outputs["evaluation"][0].load()
    primary = evaluation.primary_metric
    assert evaluation.improvement[primary] > 0, evaluation
    card = str(run.steps["model_card"].outputs["model_card"][0].load())
    assert (
        "- Global batch: 16 pairs per step (2 processes, DDP; in-batch negatives gathered" in card
    )
