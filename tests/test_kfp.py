"""The Kubeflow Pipelines v2 build compiles offline and places `train` on a GPU node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import kfp_pipeline
from trainer.config import HardwareConfig, load_run_config

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "finetune-k8s.yaml"
IMAGE = "registry.example.com/st-finetune:test"
STEPS = ("preflight", "load_datasets", "train", "evaluate", "model_card", "push_to_hub")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pipeline spec and its Kubernetes platform spec, compiled once."""
    output = tmp_path_factory.mktemp("kfp") / "finetune_kfp.yaml"
    kfp_pipeline.compile_pipeline(CONFIG, output, image=IMAGE)
    pipeline_spec, platform_spec = yaml.safe_load_all(output.read_text())
    return {"pipeline": pipeline_spec, "platform": platform_spec}


def _executor(compiled: dict[str, Any], step: str) -> dict[str, Any]:
    return compiled["pipeline"]["deploymentSpec"]["executors"][f"exec-{step.replace('_', '-')}"]


def _k8s(compiled: dict[str, Any], step: str) -> dict[str, Any]:
    executors = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    # A task with no Kubernetes-specific settings has no entry.
    return executors.get(f"exec-{step.replace('_', '-')}", {})


def test_every_step_runs_the_project_image(compiled: dict[str, Any]) -> None:
    tasks = compiled["pipeline"]["root"]["dag"]["tasks"]
    assert set(tasks) == {step.replace("_", "-") for step in STEPS}
    for step in STEPS:
        container = _executor(compiled, step)["container"]
        assert container["image"] == IMAGE
        # kfp comes with the image: nothing is pip-installed when the pod starts.
        assert "pip install" not in " ".join(container["command"])


def test_train_task_gets_accelerator_node_selector_toleration_and_shm(
    compiled: dict[str, Any],
) -> None:
    hardware = load_run_config(CONFIG).hardware
    resources = _executor(compiled, "train")["container"]["resources"]
    accelerator = resources["accelerator"]
    assert accelerator["resourceType"] == hardware.gpu_resource == "nvidia.com/gpu"
    assert accelerator["resourceCount"] == str(hardware.gpu_count)
    assert resources["resourceCpuRequest"] == hardware.cpu
    assert resources["resourceMemoryRequest"] == hardware.memory
    assert resources["resourceMemoryLimit"] == hardware.memory_limit
    platform = _k8s(compiled, "train")
    assert platform["nodeSelector"]["labels"] == {hardware.accelerator_label: hardware.accelerator}
    assert platform["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert platform["emptyDirMounts"] == [
        {
            "volumeName": "dshm",
            "mountPath": "/dev/shm",
            "medium": "Memory",
            "sizeLimit": hardware.shm_size,
        }
    ]


@pytest.mark.parametrize("step", [s for s in STEPS if s != "train"])
def test_cpu_tasks_get_no_gpu_placement(compiled: dict[str, Any], step: str) -> None:
    resources = _executor(compiled, step)["container"]["resources"]
    assert "accelerator" not in resources
    assert {"resourceCpuRequest", "resourceMemoryRequest"} <= set(resources)
    platform = _k8s(compiled, step)
    assert not {"nodeSelector", "tolerations", "emptyDirMounts"} & set(platform)


@pytest.mark.parametrize("step", STEPS)
def test_hub_token_secret_becomes_an_env_var(compiled: dict[str, Any], step: str) -> None:
    """Least privilege: the Secret reaches the tasks that download from or publish to the
    Hub (this config trains a Hub model on Hub data and does not publish), no others."""
    config = load_run_config(CONFIG)
    if step in ("model_card", "push_to_hub"):
        assert "secretAsEnv" not in _k8s(compiled, step)
        return
    (secret,) = _k8s(compiled, step)["secretAsEnv"]
    assert secret["secretName"] == config.hub.secret_name
    assert secret["keyToEnv"] == [{"secretKey": "HF_TOKEN", "envVar": "HF_TOKEN"}]
    # Public Hub models and datasets download without a token; only publishing needs it.
    assert secret["optional"] is True


def test_retries_and_config_parameter_come_from_the_run_config(compiled: dict[str, Any]) -> None:
    document = yaml.safe_load(CONFIG.read_text())
    tasks = compiled["pipeline"]["root"]["dag"]["tasks"]
    # A retried training resumes from its checkpoints, so the train task gets several.
    assert (
        tasks["train"]["retryPolicy"]["maxRetryCount"]
        == (document["steps"]["train"]["retry"]["max_retries"])
    )
    assert document["steps"]["train"]["retry"]["max_retries"] >= 3
    assert (
        tasks["load-datasets"]["retryPolicy"]["maxRetryCount"] == document["retry"]["max_retries"]
    )
    default = compiled["pipeline"]["root"]["inputDefinitions"]["parameters"]["config"]
    expected = load_run_config(CONFIG).model_dump(mode="json")
    # Said once, in the ZenML model entry, and carried into the run config.
    expected["output"]["model_name"] = document["model"]["name"]
    expected["card"]["license"] = document["model"]["license"]
    assert json.loads(default["defaultValue"]) == expected


def test_train_task_gets_the_pipeline_root_for_its_checkpoints(compiled: dict[str, Any]) -> None:
    inputs = compiled["pipeline"]["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert inputs["pipeline_root"]["runtimeValue"]["constant"] == "{{$.pipeline_root}}"


def test_train_resources_come_from_hardware_only(tmp_path: Path) -> None:
    document = yaml.safe_load(CONFIG.read_text())
    document["steps"]["train"]["settings"] = {
        "orchestrator.kubernetes": {"pod_settings": {"resources": {"requests": {"cpu": "2"}}}}
    }
    config = tmp_path / "twice.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(
        ValueError,
        match=r"both set the training resources: keep them in parameters\.config\.hardware",
    ):
        kfp_pipeline.compile_pipeline(config, tmp_path / "out.yaml", image=IMAGE)


@pytest.mark.slow
def test_the_kfp_build_does_not_import_zenml() -> None:
    """The KFP path reads the run YAML itself: nothing of ZenML's internals."""
    import subprocess
    import sys

    probe = (
        "import sys, pipelines.kfp_pipeline; print(any(m.startswith('zenml') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_cpu_only_hardware_sets_no_accelerator(tmp_path: Path) -> None:
    """gpu_count: 0 keeps the node placement but asks for no accelerator."""
    document = yaml.safe_load(CONFIG.read_text())
    hardware = HardwareConfig(gpu_count=0, node_selector={"pool": "highmem"}, tolerations=[])
    document["parameters"]["config"]["hardware"] = hardware.model_dump()
    config = tmp_path / "cpu.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    output = kfp_pipeline.compile_pipeline(config, tmp_path / "cpu_kfp.yaml", image=IMAGE)
    pipeline_spec, platform_spec = yaml.safe_load_all(output.read_text())
    compiled = {"pipeline": pipeline_spec, "platform": platform_spec}
    assert "accelerator" not in _executor(compiled, "train")["container"].get("resources", {})
    platform = _k8s(compiled, "train")
    assert platform["nodeSelector"]["labels"] == {"pool": "highmem"}
    assert "tolerations" not in platform


@pytest.mark.slow
def test_component_functions_run_the_trainer_core(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """The components' Python bodies, called directly with local stand-in artifacts."""
    from types import SimpleNamespace

    from tests.conftest import docs_pipeline_config
    from trainer.config import RunConfig

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    out = tmp_path / "out"
    document["output"] = {"dir": str(out)}
    config = RunConfig.model_validate(document).model_dump_json()

    def artifact(name: str) -> SimpleNamespace:
        return SimpleNamespace(path=str(tmp_path / name))

    train_data, eval_data, model, card, report = (
        artifact(n) for n in ("train", "eval", "model", "card", "report.html")
    )
    logged: dict[str, float] = {}
    metrics = SimpleNamespace(log_metric=logged.__setitem__)

    root = str(tmp_path / "pipeline-root")
    stats = kfp_pipeline.load_datasets(config, train_data, eval_data)
    training = kfp_pipeline.train(
        config, train_data, eval_data, root, "run-1", "id-1", "unused:image", model
    )
    evaluation = kfp_pipeline.evaluate(config, eval_data, model, metrics, report, training)
    kfp_pipeline.model_card(config, evaluation, training, stats, "run-1", "id-1", card)
    outcome = kfp_pipeline.push_to_hub(config, model, evaluation, card, "run-1")

    assert json.loads(json.dumps([stats, training, evaluation, outcome]))  # KFP parameters
    assert training["model_info"]["embedding_dimension"] == 32
    # No checkpoints.uri: the series goes under the pipeline root (a local path here).
    assert training["checkpoints"]["uri"].startswith(f"{root}/checkpoints/st-finetune/")
    assert logged == evaluation["finetuned"]
    text = Path(card.path).read_text()
    assert text.startswith("---\n")
    assert "Produced by a [Kubeflow](https://www.kubeflow.org) pipeline run." in text
    assert outcome["pushed"] is False
    assert outcome["reason"] == "hub.enabled is false"
    # The same results where people look as on the ZenML path, from the same core.
    assert (out / "model" / "README.md").read_text() == text
    assert "Training curves" in Path(report.path).read_text()
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"] == "Kubeflow run run-1"
    assert summary["promotion"] is None
    assert set(summary["files"]) == {"model", "model_card", "report", "evaluation", "summary"}


def test_a_multi_node_train_task_submits_without_gpus(tmp_path: Path) -> None:
    output = kfp_pipeline.compile_pipeline(
        CONFIG.parent / "finetune-k8s-multinode.yaml", tmp_path / "nodes.yaml", image=IMAGE
    )
    pipeline_spec, platform_spec = yaml.safe_load_all(output.read_text())
    compiled = {"pipeline": pipeline_spec, "platform": platform_spec}
    resources = _executor(compiled, "train")["container"]["resources"]
    assert "accelerator" not in resources
    assert resources["resourceCpuRequest"] == "500m"
    inputs = pipeline_spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert inputs["image"]["runtimeValue"]["constant"] == IMAGE  # what the nodes run


def test_the_preflight_task_runs_first(compiled: dict[str, Any]) -> None:
    tasks = compiled["pipeline"]["root"]["dag"]["tasks"]
    assert tasks["load-datasets"]["dependentTasks"] == ["preflight"]
    assert "dependentTasks" not in tasks["preflight"]


def test_the_preflight_component_stops_a_bad_config(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    from tests.conftest import docs_pipeline_config
    from trainer.config import RunConfig
    from trainer.preflight import PreflightFailed

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    ok = kfp_pipeline.preflight(RunConfig.model_validate(document).model_dump_json(), str(tmp_path))
    assert ok["problems"] == []
    document["gate"] = {"metric": "docs-ir_cosine_ndcg@100"}
    with pytest.raises(PreflightFailed, match=r"gate\.metric: 'docs-ir_cosine_ndcg@100'"):
        kfp_pipeline.preflight(RunConfig.model_validate(document).model_dump_json(), str(tmp_path))


def test_a_search_feeds_the_train_task_and_the_card(tmp_path: Path) -> None:
    """With a `search` block, training and the card use the tuned config, and the card
    gets the search result (what the ZenML pipeline does too)."""
    document = yaml.safe_load(CONFIG.read_text())
    document["parameters"]["config"]["search"] = {
        "space": {"learning_rate": {"low": 1e-5, "high": 1e-4, "log": True}},
        "n_trials": 2,
        "metric": document["parameters"]["config"]["gate"]["metric"],
    }
    source = tmp_path / "search.yaml"
    source.write_text(yaml.safe_dump(document))
    output = kfp_pipeline.compile_pipeline(source, tmp_path / "search_kfp.yaml", image=IMAGE)
    tasks = yaml.safe_load_all(output.read_text()).__next__()["root"]["dag"]["tasks"]

    def upstream(task: str, parameter: str) -> dict[str, str]:
        return tasks[task]["inputs"]["parameters"][parameter]["taskOutputParameter"]

    tuned = {"producerTask": "hyperparameter-search", "outputParameterKey": "tuned_config"}
    assert upstream("train", "config") == tuned
    assert upstream("model-card", "config") == tuned
    assert upstream("model-card", "search") == {
        "producerTask": "hyperparameter-search",
        "outputParameterKey": "search",
    }


@pytest.mark.slow
def test_the_search_component_returns_the_tuned_config_and_the_card_records_it(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from tests.conftest import docs_pipeline_config
    from trainer.config import RunConfig
    from trainer.results import DataReport, Evaluation, TrainingSummary

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["search"] = {
        "space": {"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}},
        "n_trials": 2,
        "metric": "docs-ir_cosine_ndcg@10",
        "max_samples": 16,
    }
    config = RunConfig.model_validate(document).model_dump_json()
    train_data, eval_data, report, card = (
        SimpleNamespace(path=str(tmp_path / name)) for name in ("train", "eval", "report", "card")
    )
    kfp_pipeline.load_datasets(config, train_data, eval_data)

    tuned_config, search = kfp_pipeline.hyperparameter_search(config, train_data, eval_data, report)

    tuned = RunConfig.model_validate_json(tuned_config)
    assert tuned.search is None
    best = search["best_params"]["learning_rate"]
    assert tuned.training["learning_rate"] == best
    assert json.loads(json.dumps(search)) == search  # a KFP parameter
    assert "<table" in Path(report.path).read_text()
    kfp_pipeline.model_card(
        tuned_config,
        Evaluation().model_dump(mode="json"),
        TrainingSummary(train_seconds=1.0, global_step=2).model_dump(mode="json"),
        DataReport(datasets={}).model_dump(mode="json"),
        "run-1",
        "id-1",
        card,
        search=search,
    )
    assert "Hyperparameters chosen by a search of 2 trials" in Path(card.path).read_text()


@pytest.mark.parametrize(
    "name", ["finetune-k8s", "finetune-k8s-multigpu", "finetune-k8s-multinode"]
)
def test_cpu_tasks_get_the_resources_the_zenml_steps_get(name: str, tmp_path: Path) -> None:
    """Both orchestrators read the same layers (the stack orchestrator's file, the
    pipeline's defaults, the run YAML): a CPU task asks for what its ZenML step Job does."""
    from pipelines import k8s_manifests
    from trainer.cluster import to_manifest

    config = CONFIG.parent / f"{name}.yaml"
    output = kfp_pipeline.compile_pipeline(config, tmp_path / "kfp.yaml", image=IMAGE)
    pipeline_spec, platform_spec = yaml.safe_load_all(output.read_text())
    compiled = {"pipeline": pipeline_spec, "platform": platform_spec}
    run = k8s_manifests.load_run(config)
    compared = []
    for task in pipeline_spec["root"]["dag"]["tasks"]:
        step = task.replace("-", "_")
        job = to_manifest(k8s_manifests.step_job(run, step))
        resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
        if "nvidia.com/gpu" in resources.get("limits", {}):
            continue  # the training pod: from `hardware` (tested above)
        kfp = _executor(compiled, step)["container"]["resources"]
        assert {
            "requests": {
                key: kfp[f"resource{key.capitalize()}Request"]
                for key in ("cpu", "memory")
                if f"resource{key.capitalize()}Request" in kfp
            },
            "limits": {
                key: kfp[f"resource{key.capitalize()}Limit"]
                for key in ("cpu", "memory")
                if f"resource{key.capitalize()}Limit" in kfp
            },
        } == {"requests": resources["requests"], "limits": resources.get("limits", {})}, step
        compared.append(step)
    assert "preflight" in compared and "evaluate" in compared
