"""Issue 18, item 6: small misuses the preflight now names (each with its message)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, write_jsonl
from tests.test_preflight import PACKAGED_MODEL, _document, _run
from trainer.config import ModelConfig
from trainer.models import load_model, max_positions


def test_a_max_seq_length_above_the_model_cap_is_an_error_naming_the_cap(
    tmp_path: Path,
) -> None:
    report = _run(tmp_path, _document(tmp_path, **{"model.max_seq_length": 100000}))
    assert [str(problem) for problem in report.problems] == [
        f"model.max_seq_length: 100000 is above the 512 tokens {PACKAGED_MODEL!r} can take "
        "(max_position_embeddings in its config.json); use 512 or less"
    ]
    assert _run(tmp_path, _document(tmp_path, **{"model.max_seq_length": 512})).ok


def test_loading_refuses_the_length_too_not_only_the_preflight() -> None:
    config = ModelConfig(name_or_path=PACKAGED_MODEL, max_seq_length=100000)
    assert max_positions(config) == 512
    with pytest.raises(ValueError, match=r"model\.max_seq_length: 100000 is above the 512"):
        load_model(config)


def test_trust_remote_code_is_a_warning(tmp_path: Path) -> None:
    report = _run(tmp_path, _document(tmp_path, **{"model.trust_remote_code": True}))
    assert report.ok, report.problems
    assert (
        f"model.trust_remote_code is true: loading {PACKAGED_MODEL!r} runs Python code from "
        "its repository on every machine the run uses; set it only for a model whose code "
        "you have read (the model card records it)"
    ) in report.warnings
    assert not any("trust_remote_code" in w for w in _run(tmp_path, _document(tmp_path)).warnings)


def _leaking(tmp_path: Path) -> dict:
    """Training pairs, and held-out pairs whose first query is also a training query."""
    train = [{"q": f"question {i}", "d": f"answer number {i}"} for i in range(40)]
    held = [{"q": "Question  3", "d": "another answer"}] + [
        {"q": f"held-out question {i}", "d": f"held-out answer {i}"} for i in range(9)
    ]
    document = _document(tmp_path)
    dataset = document["datasets"]["docs"]
    del dataset["eval_size"]
    dataset["eval_source"] = {"path": str(write_jsonl(tmp_path / "held.jsonl", held))}
    dataset["source"] = {"path": str(write_jsonl(tmp_path / "train.jsonl", train))}
    return document


def test_the_preflight_runs_the_load_steps_leakage_check(tmp_path: Path) -> None:
    report = _run(tmp_path, _leaking(tmp_path))
    assert [str(problem) for problem in report.problems] == [
        "leakage.on_query_overlap: 1 of 10 held-out queries of dataset 'docs' also occur in "
        "training data (docs: 1), e.g. 'Question  3'. Remove them from one side, or set "
        "leakage.on_query_overlap: warn to evaluate anyway"
    ]
    assert report.data is not None and report.data.leakage is not None

    document = _leaking(tmp_path)
    document["leakage"] = {"on_query_overlap": "warn"}
    warned = _run(tmp_path, document)
    assert warned.ok, warned.problems
    assert any("1 of 10 held-out queries of dataset 'docs'" in w for w in warned.warnings)
    clean = _run(tmp_path, _document(tmp_path))
    assert any(line.startswith("leakage: held-out rows of docs") for line in clean.checked)


@pytest.mark.slow
def test_the_preflight_command_reports_leakage(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_leaking(tmp_path), sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "trainer.preflight", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "leakage.on_query_overlap: 1 of 10 held-out queries of dataset 'docs'" in result.stdout


def test_the_preflight_warns_when_the_run_trains_fewer_steps_than_the_gate_needs(
    tmp_path: Path,
) -> None:
    """30 training rows at the measured batch 32: one step, below gate.min_steps 10."""
    report = _run(tmp_path, _document(tmp_path))
    assert (
        "the run will train about 1 optimizer step(s), fewer than gate.min_steps 10: the gate "
        'will fail it with "no meaningful training" (more rows or epochs, a smaller batch, '
        "or a lower gate.min_steps)"
    ) in report.warnings
    enough = _document(tmp_path, **{"training": {"per_device_train_batch_size": 8}})
    enough["training"]["num_train_epochs"] = 3  # 4 batches x 3 epochs = 12 steps
    assert not any("gate.min_steps" in w for w in _run(tmp_path, enough).warnings)
    lowered = _document(tmp_path, **{"gate.min_steps": 1})
    assert not any("gate.min_steps" in w for w in _run(tmp_path, lowered).warnings)
