"""The fine-tuning pipeline as a Kubeflow Pipelines (KFP v2) spec, from the same trainer core.

    python -m pipelines.kfp_pipeline --config configs/finetune-k8s.yaml \
        --image REGISTRY/st-finetune:0.1.0 --output build/finetune_kfp.yaml

compiles offline (no cluster, no KFP server) to a pipeline YAML you upload in the KFP UI
or submit with `kfp.Client().create_run_from_pipeline_package(...)`.

Why not ZenML's Kubeflow orchestrator: it needs a live KFP endpoint to compile, lags
behind current kfp, and drops per-step pod settings, so the GPU step would land on any
node. This is a native KFP pipeline instead: each step is a lightweight component
calling `trainer` inside the image built from `k8s/Dockerfile` (kfp is installed there,
so nothing is pip-installed at run time), and the `train` task gets its accelerator,
node selector, tolerations, resources and `/dev/shm` from `trainer.kubernetes`, the same
translation of `config.hardware` the ZenML path uses.

The run config is one YAML for both paths: `parameters.config` becomes the pipeline's
`config` parameter, a JSON string (KFP parameters cannot hold nulls; override it per
run with the JSON of another RunConfig), step retries come from `retry` /
`steps.<name>.retry`, CPU requests/limits from `steps.<name>.settings.
orchestrator.kubernetes.pod_settings.resources`. Hardware is fixed at compile time.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as
# real types (Input[Dataset], Output[Model], ...), not strings.

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

from pipelines.k8s_manifests import load_run, run_config, step_settings
from trainer.config import RunConfig
from trainer.hardware import HardwareSpec
from trainer.kubernetes import pod_hardware

PIPELINE_NAME = "st-finetune"
DEFAULT_IMAGE = "st-finetune:0.1.0"
HF_TOKEN_KEY = "HF_TOKEN"
"""Key of the Kubernetes Secret (named `hub.secret_name`) and the env var it becomes."""


# --- components: thin adapters between KFP artifacts and the trainer core -------------
# KFP ships each function's source into the pod, so every import lives inside it.


def load_datasets(config: str, train_data: Output[Dataset], eval_data: Output[Dataset]) -> dict:
    """Train and held-out DatasetDicts (saved with `save_to_disk`) plus their sizes."""
    from trainer.config import RunConfig
    from trainer.data import dataset_stats
    from trainer.data import load_datasets as load_run_datasets

    train, held_out = load_run_datasets(RunConfig.model_validate_json(config))
    train.save_to_disk(train_data.path)
    held_out.save_to_disk(eval_data.path)
    return dataset_stats(train, held_out)


def train(
    config: str, train_data: Input[Dataset], eval_data: Input[Dataset], model: Output[Model]
) -> dict:
    """Fine-tune; the model is saved as a sentence-transformers folder."""
    import tempfile

    from datasets import load_from_disk

    from trainer.config import RunConfig
    from trainer.training import train as run_training

    run = RunConfig.model_validate_json(config)
    result = run_training(
        run,
        load_from_disk(train_data.path),
        load_from_disk(eval_data.path),
        output_dir=tempfile.mkdtemp(prefix="checkpoints-"),
    )
    result.model.save(model.path)
    return result.summary()


def evaluate(
    config: str, eval_data: Input[Dataset], model: Input[Model], metrics: Output[Metrics]
) -> dict:
    """Base vs fine-tuned on identical evaluators; fine-tuned metrics shown in the KFP UI."""
    from datasets import load_from_disk
    from sentence_transformers import SentenceTransformer

    from trainer.config import RunConfig
    from trainer.evaluation import build_evaluators, compare
    from trainer.training import load_model

    run = RunConfig.model_validate_json(config)
    evaluators = build_evaluators(run, load_from_disk(eval_data.path))
    if not evaluators:
        raise ValueError("nothing to evaluate: configure evaluators or an eval split")
    evaluation = compare(load_model(run.model), SentenceTransformer(model.path), evaluators)
    for key, value in evaluation["finetuned"].items():
        metrics.log_metric(key, value)
    return evaluation


def model_card(
    config: str,
    evaluation: dict,
    training: dict,
    dataset_stats: dict,
    run_name: str,
    run_id: str,
    card: Output[Markdown],
) -> None:
    """The Hub README.md (front matter + body), also rendered in the KFP UI."""
    from trainer.config import RunConfig
    from trainer.model_card import render_model_card

    text = render_model_card(
        RunConfig.model_validate_json(config),
        evaluation=evaluation,
        training=training,
        dataset_stats=dataset_stats,
        model_info=training.get("model_info", {}),
        run={"pipeline_name": "st-finetune (Kubeflow)", "run_name": run_name, "run_id": run_id},
        emissions=training.get("emissions"),
    )
    with open(card.path, "w", encoding="utf-8") as handle:
        handle.write(text)


def push_to_hub(
    config: str, model: Input[Model], evaluation: dict, card: Input[Markdown], run_name: str
) -> dict:
    """Publish only if the gate passes and hub.enabled; the token is the HF_TOKEN env var."""
    import os
    import shutil

    from trainer.config import RunConfig
    from trainer.hub import gated_push

    def write_folder(folder):
        shutil.copytree(model.path, folder)
        shutil.copyfile(card.path, folder / "README.md")

    return gated_push(
        RunConfig.model_validate_json(config),
        evaluation,
        write_folder=write_folder,
        token=lambda: os.environ.get("HF_TOKEN", ""),
        run_label=f"Kubeflow run {run_name}",
        log=lambda line: print(line, flush=True),
    )


# --- task configuration from the run config ------------------------------------------


def apply_hardware(task: dsl.PipelineTask, hardware: HardwareSpec) -> dsl.PipelineTask:
    """Give `task` the pod settings `trainer.kubernetes` derives from `hardware`."""
    parts = pod_hardware(hardware)
    for key, value in parts.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in parts.tolerations:
        kubernetes.add_toleration(
            task,
            key=toleration.key,
            operator=toleration.operator,
            value=toleration.value,
            effect=toleration.effect,
            toleration_seconds=toleration.toleration_seconds,
        )
    limits = dict(parts.resources.limits or {})
    if hardware.gpu_count > 0:
        # KFP's accelerator type on Kubernetes is the extended resource name.
        task.set_accelerator_type(hardware.gpu_resource)
        task.set_accelerator_limit(int(limits.pop(hardware.gpu_resource)))
    _set_resources(task, dict(parts.resources.requests or {}), limits)
    for volume, mount in zip(parts.volumes, parts.volume_mounts, strict=True):
        kubernetes.empty_dir_mount(
            task,
            volume_name=volume.name,
            mount_path=mount.mount_path,
            medium=volume.empty_dir.medium,
            size_limit=volume.empty_dir.size_limit,
        )
    return task


def _set_resources(
    task: dsl.PipelineTask, requests: dict[str, str], limits: dict[str, str]
) -> None:
    setters: dict[tuple[str, str], Callable[[str], Any]] = {
        ("requests", "cpu"): task.set_cpu_request,
        ("requests", "memory"): task.set_memory_request,
        ("limits", "cpu"): task.set_cpu_limit,
        ("limits", "memory"): task.set_memory_limit,
    }
    for kind, values in (("requests", requests), ("limits", limits)):
        for name, value in values.items():
            if (kind, name) in setters:
                setters[kind, name](str(value))


def _configure(
    task: dsl.PipelineTask, zenml_run: PipelineRunConfiguration, step: str, run: RunConfig
) -> dsl.PipelineTask:
    """Resources and retries as ZenML would give `step` (pipeline + step settings merged
    by `pipelines.k8s_manifests.step_settings`), and the Hub-token Secret."""
    task.set_display_name(step)
    effective = step_settings(zenml_run, step)
    pod = effective.settings.pod_settings
    resources = dict(pod.resources) if pod and pod.resources else {}
    _set_resources(task, resources.get("requests") or {}, resources.get("limits") or {})
    if effective.retry is not None and effective.retry.max_retries:
        task.set_retry(num_retries=effective.retry.max_retries)
    # Hub downloads (gated models/datasets) and the push read HF_TOKEN; the Secret is
    # only required when the run publishes.
    kubernetes.use_secret_as_env(
        task,
        secret_name=run.hub.secret_name,
        secret_key_to_env={HF_TOKEN_KEY: HF_TOKEN_KEY},
        optional=not run.hub.enabled,
    )
    return task


# --- the pipeline -------------------------------------------------------------------


def build_pipeline(zenml_run: PipelineRunConfiguration, image: str = DEFAULT_IMAGE) -> Any:
    """The KFP pipeline for a ZenML run config (the same YAML the ZenML path runs)."""
    run = run_config(zenml_run)
    ops = {
        fn.__name__: dsl.component(func=fn, base_image=image, install_kfp_package=False)
        for fn in (load_datasets, train, evaluate, model_card, push_to_hub)
    }

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Fine-tune a sentence-transformers model; evaluate; card; gated Hub push.",
    )
    def finetune(config: str = run.model_dump_json()) -> None:
        data = _configure(ops["load_datasets"](config=config), zenml_run, "load_datasets", run)
        trained = _configure(
            ops["train"](
                config=config,
                train_data=data.outputs["train_data"],
                eval_data=data.outputs["eval_data"],
            ),
            zenml_run,
            "train",
            run,
        )
        if run.hardware is not None:
            apply_hardware(trained, run.hardware)
        evaluated = _configure(
            ops["evaluate"](
                config=config,
                eval_data=data.outputs["eval_data"],
                model=trained.outputs["model"],
            ),
            zenml_run,
            "evaluate",
            run,
        )
        card = _configure(
            ops["model_card"](
                config=config,
                evaluation=evaluated.outputs["Output"],
                training=trained.outputs["Output"],
                dataset_stats=data.outputs["Output"],
                run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            ),
            zenml_run,
            "model_card",
            run,
        )
        _configure(
            ops["push_to_hub"](
                config=config,
                model=trained.outputs["model"],
                evaluation=evaluated.outputs["Output"],
                card=card.outputs["card"],
                run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            ),
            zenml_run,
            "push_to_hub",
            run,
        )

    return finetune


def compile_pipeline(
    config_path: str | Path, output: str | Path, image: str = DEFAULT_IMAGE
) -> Path:
    """Compile the pipeline for `config_path` to `output` (YAML); offline."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    pipeline = build_pipeline(load_run(config_path), image)
    compiler.Compiler().compile(pipeline, package_path=str(output))
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compile the KFP v2 fine-tuning pipeline.")
    parser.add_argument("--config", default="configs/finetune-k8s.yaml")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="image built from k8s/Dockerfile")
    parser.add_argument("--output", default="build/finetune_kfp.yaml")
    args = parser.parse_args(argv)
    print(compile_pipeline(args.config, args.output, args.image))


if __name__ == "__main__":
    main()
