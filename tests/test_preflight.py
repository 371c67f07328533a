"""The preflight finds every problem of issue 8 before any model loads, all in one run.

* Every case of `tests/test_fail_fast.py` (data, YAML, training arguments, loss params,
  base model) runs again through `preflight`, which must report its message.
* The cases that used to fail late (after the model loaded, or after training): a gate
  metric no evaluator reports, a missing Hub secret, an evaluator column or source that
  does not exist, output and checkpoint locations that cannot be written, a checkpoint
  to resume from that does not exist.
* In every case no `SentenceTransformer` is constructed, and the preflight returns its
  findings (it does not raise).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import test_fail_fast
from tests.conftest import REPO_ROOT, write_jsonl
from trainer.preflight import PreflightFailed, PreflightReport, preflight

PACKAGED_MODEL = test_fail_fast.PACKAGED_MODEL
NDCG = "docs-ir_cosine_ndcg@10"


@pytest.fixture
def no_model_loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fails the test if anything constructs a `SentenceTransformer`."""
    from sentence_transformers import SentenceTransformer

    constructed: list[str] = []

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        constructed.append(str(args[:1] or kwargs.get("model_name_or_path")))
        raise AssertionError("the preflight constructed a SentenceTransformer")

    monkeypatch.setattr(SentenceTransformer, "__init__", refuse)
    yield constructed
    assert constructed == [], f"models loaded: {constructed}"


@pytest.mark.parametrize(("case", "message"), test_fail_fast.CASES)
def test_every_fail_fast_case_is_a_preflight_problem(
    case: Callable[[Path], None],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_model_loaded: list[str],
) -> None:
    monkeypatch.setattr(test_fail_fast, "THROUGH_PREFLIGHT", True)
    with pytest.raises(ValueError, match=message):
        case(tmp_path)


# --- the late cases: each a good config with one mistake ---------------------------


def _document(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A valid run: 40 pairs with a held-out quarter, information retrieval on it."""
    pairs = [{"q": f"question {i}", "d": f"answer number {i}"} for i in range(40)]
    document: dict[str, Any] = {
        "model": {"name_or_path": PACKAGED_MODEL},
        "datasets": {
            "docs": {
                "source": {"path": str(write_jsonl(tmp_path / "pairs.jsonl", pairs))},
                "columns": {"q": "anchor", "d": "positive"},
                "eval_size": 0.25,
            }
        },
        "evaluators": [{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
        "gate": {"metric": NDCG},
        "output": {"dir": str(tmp_path / "out")},
        "checkpoints": {"uri": str(tmp_path / "checkpoints")},
    }
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        target = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[key] = value
    return document


def _run(tmp_path: Path, document: dict[str, Any], **kwargs: Any) -> PreflightReport:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return preflight(path, **kwargs)


def _foreign_checkpoints(tmp_path: Path) -> str:
    """Another Trainer's output folder: checkpoint-500/ and checkpoint-1000/."""
    for step in (500, 1000):
        folder = tmp_path / "their-run" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    return str(tmp_path / "their-run")


def _a_file(tmp_path: Path) -> str:
    (tmp_path / "a-file").write_text("not a folder")
    return str(tmp_path / "a-file")


def _evaluator_source(tmp_path: Path) -> dict:
    return {"type": "information_retrieval", "name": "ext", "source": {"path": "missing.jsonl"}}


LATE_CASES: list[Any] = [
    pytest.param(
        lambda tmp_path: {"gate.metric": "docs-ir_cosine_ndcg@100"},
        {},
        r"gate\.metric: 'docs-ir_cosine_ndcg@100' is not reported by any evaluator; did you "
        r"mean 'docs-ir_cosine_ndcg@10'\? they report: docs-ir_cosine_accuracy@1, ",
        id="gate-metric-not-produced",
    ),
    pytest.param(
        lambda tmp_path: {
            "gate.metric": None,
            "evaluators.0.params": {"main_score_function": "dot"},
        },
        {},
        r"gate\.metric: not set, so the gate would use the first evaluator's primary metric "
        r"'docs-ir_dot_ndcg@10', which it does not report",
        id="default-gate-metric-not-produced",
    ),
    pytest.param(
        lambda tmp_path: {"hub": {"enabled": True, "repo_id": "org/model", "secret_name": "hf"}},
        {"secret_exists": lambda name: False},
        r"hub\.secret_name: no secret 'hf' holding HF_TOKEN, so the model could not be pushed; "
        r"create it \(ZenML: `zenml secret create hf --HF_TOKEN=<token>`\)",
        id="hub-secret-missing",
    ),
    pytest.param(
        lambda tmp_path: {"hub": {"enabled": True, "repo_id": "my org/model"}},
        {"secret_exists": lambda name: True},
        r"hub\.repo_id: 'my org/model' is not a Hub repo id",
        id="hub-repo-id",
    ),
    pytest.param(
        lambda tmp_path: {"evaluators.0.query_column": "question"},
        {},
        r"evaluators\.0\.query_column: evaluator 'docs-ir' reads column 'question', which the "
        r"held-out split of dataset 'docs' does not have; it has: anchor, positive",
        id="evaluator-query-column",
    ),
    pytest.param(
        lambda tmp_path: {"evaluators": [_evaluator_source(tmp_path)], "gate.metric": None},
        {},
        r"evaluators\.0\.source: evaluator 'ext': file 'missing\.jsonl' does not exist",
        id="evaluator-source",
    ),
    pytest.param(
        lambda tmp_path: {"evaluators.0.params": {"ndcg_at": [10]}},
        {},
        r"evaluators\.0\.params: sentence-transformers rejects evaluator 'docs-ir': TypeError: "
        r".*unexpected keyword argument 'ndcg_at'",
        id="evaluator-params",
    ),
    pytest.param(
        lambda tmp_path: {"evaluators": [], "datasets.docs.eval_size": None, "gate.metric": None},
        {},
        r"evaluators: nothing to evaluate: no evaluator is configured and no dataset holds "
        r"held-out",
        id="nothing-to-evaluate",
    ),
    pytest.param(
        lambda tmp_path: {"output.dir": _a_file(tmp_path)},
        {},
        r"output\.dir: '.*a-file' is a file, not a folder; the model and evaluation\.json go",
        id="output-dir-is-a-file",
    ),
    pytest.param(
        lambda tmp_path: {"output.dir": f"{_a_file(tmp_path)}/run"},
        {},
        r"output\.dir: '.*a-file/run' cannot be created: '.*a-file' is a file",
        id="output-dir-under-a-file",
    ),
    pytest.param(
        # sysfs refuses new files even to root (the tests may run as root).
        lambda tmp_path: {"output.dir": "/sys/st-finetune-out"},
        {},
        r"output\.dir: cannot write in '/sys': ",
        id="output-dir-not-writable",
    ),
    pytest.param(
        lambda tmp_path: {"checkpoints.uri": _foreign_checkpoints(tmp_path)},
        {},
        r"checkpoints\.uri: '.*their-run': checkpoint location .*their-run holds files this run "
        r"did not write \(checkpoint-1000, checkpoint-500\) and no SERIES\.json",
        id="checkpoints-uri-foreign",
    ),
    pytest.param(
        lambda tmp_path: {"checkpoints.resume": str(tmp_path / "checkpoints" / "checkpoint-40")},
        {},
        r"checkpoints\.resume: '.*checkpoint-40' is not a checkpoint folder \(expected "
        r"checkpoint-<step>/ holding trainer_state\.json\)",
        id="resume-checkpoint-missing",
    ),
    pytest.param(
        lambda tmp_path: {"training": {"resume_from_checkpoint": True}},
        {},
        r"training: resume_from_checkpoint is set from checkpoints\.resume; remove it",
        id="resume-from-checkpoint-refused",
    ),
    pytest.param(
        lambda tmp_path: {"checkpoints.uri": "minio://bucket/checkpoints"},
        {},
        r"checkpoints\.uri: 'minio://bucket/checkpoints': fsspec knows no filesystem for "
        r"minio://",
        id="checkpoints-minio",
    ),
    pytest.param(
        lambda tmp_path: {"checkpoints.uri": None},
        {"artifact_root": "minio://mlpipeline/artifacts"},
        r"checkpoints\.uri: not set, so checkpoints would go to the artifact store at "
        r"'minio://mlpipeline/artifacts/checkpoints': fsspec knows no filesystem",
        id="checkpoints-default-unknown-protocol",
    ),
    pytest.param(
        lambda tmp_path: {"checkpoints.uri": f"{_a_file(tmp_path)}/ckpt"},
        {},
        r"checkpoints\.uri: '.*a-file/ckpt': '.*a-file/ckpt' cannot be created: .*is a file",
        id="checkpoints-under-a-file",
    ),
]


@pytest.mark.parametrize(("changes", "kwargs", "message"), LATE_CASES)
def test_late_failures_are_preflight_problems(
    changes: Callable[[Path], dict],
    kwargs: dict,
    message: str,
    tmp_path: Path,
    no_model_loaded: list[str],
) -> None:
    report = _run(tmp_path, _document(tmp_path, **changes(tmp_path)), **kwargs)
    problems = [str(problem) for problem in report.problems]
    assert [p for p in problems if re.search(message, p)], problems
    assert len(problems) == 1, problems
    assert not report.ok


def test_a_good_config_passes_and_says_what_was_checked(
    tmp_path: Path, no_model_loaded: list[str]
) -> None:
    hub = {"enabled": True, "repo_id": "org/model", "secret_name": "hf"}
    asked: list[str] = []
    report = _run(
        tmp_path,
        _document(tmp_path, hub=hub),
        secret_exists=lambda name: asked.append(name) or True,
    )
    assert report.ok, report.problems
    assert asked == ["hf"]
    assert report.gate_metric == NDCG
    assert NDCG in report.metrics
    assert report.skipped == []
    assert report.data is not None and report.data.datasets["docs"].eval_rows == 10
    checked = "\n".join(report.checked)
    for expected in (
        "dataset docs: 30 training rows, 10 held out",
        f"base model {PACKAGED_MODEL}",
        "training arguments (constructed)",
        "evaluator docs-ir: 10 rows, 12 metrics",
        f"gate metric {NDCG}",
        "hub secret hf",
        f"output.dir {tmp_path / 'out'}",
        f"checkpoint location {tmp_path / 'checkpoints'}",
    ):
        assert expected in checked
    assert not (tmp_path / "out").exists(), "the preflight must not create folders"
    assert report.verdict().startswith("preflight OK in ")


def test_default_checkpoints_are_probed_in_the_artifact_root(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    report = _run(
        tmp_path, _document(tmp_path, **{"checkpoints.uri": None}), artifact_root=str(root)
    )
    assert report.ok, report.problems
    assert f"checkpoint location {root}/checkpoints" in report.checked
    assert list(root.iterdir()) == [], "the probe file is removed"


def _several_mistakes(tmp_path: Path) -> Path:
    document = _document(
        tmp_path,
        **{
            "model.name_or_path": str(tmp_path / "models" / "missing"),
            "training": {"learning_rate": -0.001, "num_train_epochs": "one"},
            "datasets.docs.loss": {
                "name": "MultipleNegativesRankingLoss",
                "params": {"scale": "x"},
            },
            "evaluators.0.query_column": "question",
            "gate.metric": "docs-ir_ndcg@10",
            "hub": {"enabled": True, "repo_id": "org/model"},
            "output.dir": _a_file(tmp_path),
            "checkpoints.resume": str(tmp_path / "checkpoint-7"),
        },
    )
    document["datasets"]["extra"] = {"source": {"path": str(tmp_path / "nope.jsonl")}}
    path = tmp_path / "several.yaml"
    path.write_text(yaml.safe_dump({"parameters": {"config": document}}, sort_keys=False))
    return path


SEVERAL_FIELDS = [
    "datasets.docs.loss.params.scale",
    "training.num_train_epochs",
    "training.learning_rate",
    "datasets.extra.source",
    "model.name_or_path",
    "evaluators.0.query_column",
    "gate.metric",
    "output.dir",
    "checkpoints.resume",
]


def test_several_mistakes_are_all_found_in_one_run(
    tmp_path: Path, no_model_loaded: list[str]
) -> None:
    report = preflight(_several_mistakes(tmp_path))
    assert [problem.field for problem in report.problems] == SEVERAL_FIELDS
    gate = next(p for p in report.problems if p.field == "gate.metric")
    assert "did you mean 'docs-ir_cosine_ndcg@10'?" in gate.message  # cosine: the default
    assert any("hub.secret_name 'huggingface'" in line for line in report.skipped)


@pytest.mark.slow
def test_the_command_prints_every_problem_and_fails(tmp_path: Path) -> None:
    """`python -m trainer.preflight` as a user runs it: one line per problem, the
    verdict last, exit status 1, and no traceback."""
    config = _several_mistakes(tmp_path)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "trainer.preflight", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines[: len(SEVERAL_FIELDS)]] == SEVERAL_FIELDS
    assert lines[-1].startswith(f"preflight FAILED in {config}: 9 problems, 0 warnings (")
    assert "Traceback" not in result.stdout + result.stderr
    print(f"preflight command on {len(SEVERAL_FIELDS)} mistakes: {elapsed:.1f} s")


def test_the_command_passes_a_shipped_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    from trainer.preflight.__main__ import main

    monkeypatch.chdir(REPO_ROOT)
    try:
        status = main(["configs/quickstart.yaml"])
    finally:
        datasets.enable_progress_bars()  # the command turns them off for its output
    lines = capsys.readouterr().out.splitlines()
    assert status == 0, lines
    assert lines[-1].startswith("preflight OK in configs/quickstart.yaml: 0 problems")


def test_the_failure_lists_every_problem(tmp_path: Path) -> None:
    report = preflight(_several_mistakes(tmp_path))
    message = str(PreflightFailed(report))
    assert message.startswith("the run config has 9 problems (found by the preflight")
    for problem in report.problems:
        assert f"\n  {problem}" in message
    assert message.endswith("check again with `python -m trainer.preflight <config.yaml>`.")


def test_retrieval_corpora_and_guards_are_checked_up_front(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """A BEIR folder or distractor file that is not there, and a guard on a metric no
    evaluator reports, are found before anything loads."""
    from tests.conftest import docs_pipeline_config
    from trainer.config import RunConfig
    from trainer.preflight import preflight

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["evaluators"][0]["distractors"] = {"source": {"path": str(tmp_path / "none.jsonl")}}
    document["evaluators"].append(
        {"type": "beir", "name": "general", "path": str(tmp_path / "beir")}
    )
    document["gate"] = {
        "metric": "docs-ir_cosine_ndcg@10",
        "guards": [{"metric": "general_ndcg@10"}],
    }
    report = preflight(RunConfig.model_validate(document))
    messages = [str(problem) for problem in report.problems]
    assert any("none.jsonl" in message for message in messages), messages
    assert any(
        message.startswith("evaluators.1: ") and "beir" in message for message in messages
    ), messages
    assert not report.ok


def test_a_guard_on_a_metric_no_evaluator_reports(tiny_model_path: Path, pairs_file: Path) -> None:
    from tests.conftest import docs_pipeline_config
    from trainer.config import RunConfig
    from trainer.preflight import preflight

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["gate"] = {"guards": [{"metric": "docs-ir_cosine_ndcg@100", "max_drop": 0.01}]}
    (problem,) = preflight(RunConfig.model_validate(document)).problems
    assert problem.field == "gate.guards[0].metric"
    assert "did you mean 'docs-ir_cosine_ndcg@10'?" in problem.message


def test_offline_hub_sources_missing_from_the_cache_are_not_checked_not_passed(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    """HF_HUB_OFFLINE is set for the tests: a Hub dataset that is not cached is a problem,
    unless the check is offline, where it is listed as not checked (and counted)."""
    from tests.conftest import docs_pipeline_config
    from trainer.config import RunConfig
    from trainer.preflight import preflight

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["datasets"]["hub"] = {
        "source": {"path": "st-finetune-tests/not-cached", "split": "train"},
        "columns": {"query": "anchor", "document": "positive"},
    }
    config = RunConfig.model_validate(document)
    online = preflight(config)
    assert [problem.field for problem in online.problems] == ["datasets.hub.source"]

    offline = preflight(config, offline=True)
    assert offline.ok and offline.unchecked_offline == 1
    assert any(
        line.startswith("datasets.hub.source: Hub dataset 'st-finetune-tests/not-cached' is "
                        "not in the local cache (--offline)")
        for line in offline.skipped
    )  # fmt: skip
    assert offline.verdict().startswith(
        "preflight OK: 0 problems, 0 warnings, 1 not checked offline"
    )
    assert "dataset docs: " in " ".join(offline.checked)  # the rest is checked as usual


def test_the_command_checks_several_configs_offline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer.preflight.__main__ import main

    monkeypatch.chdir(REPO_ROOT)
    status = main(["--offline", "configs/quickstart.yaml", "configs/finetune-k8s.yaml"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0, lines
    assert lines[0] == "== configs/quickstart.yaml"
    assert "== configs/finetune-k8s.yaml" in lines
    assert any(
        line.startswith("not checked: model.name_or_path: Hub model 'BAAI/") for line in lines
    )
    assert any(
        line.startswith(
            "preflight OK in configs/finetune-k8s.yaml: 0 problems, 0 warnings, 3 not checked offline"
        )
        for line in lines
    )
    assert (
        lines[-1] == "preflight OK: 2 configs, 0 with problems, 3 Hub sources not checked offline"
    )
