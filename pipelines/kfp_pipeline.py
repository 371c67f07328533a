"""The fine-tuning pipeline as a Kubeflow Pipelines (KFP v2) spec, from the same trainer core.

    python -m pipelines.kfp_pipeline --config configs/finetune-k8s.yaml \
        --image REGISTRY/st-finetune:0.1.0 --output build/finetune_kfp.yaml

compiles offline (no cluster, no KFP server) to a pipeline YAML you upload in the KFP UI
or submit with `kfp.Client().create_run_from_pipeline_package(...)`.

Why not ZenML's Kubeflow orchestrator: it needs a live KFP endpoint to compile, lags
behind current kfp, and drops per-step pod settings, so the GPU step would land on any
node. This is a native KFP pipeline instead: each step is a lightweight component that
adapts KFP artifacts to one stage of `trainer.stages.run` (the same stages the ZenML steps
call), inside the image built from `k8s/Dockerfile` (kfp is installed there, so nothing
is pip-installed at run time). The `train` task gets its accelerator, node selector,
tolerations, resources and `/dev/shm` from `trainer.cluster.pods`, the same translation
of `config.hardware` the ZenML path uses; the other tasks' resources and every task's
retries come from the run YAML's ZenML part, read by `pipelines.kfp_settings` over the
same base layers a ZenML run on the project's stack gets (`k8s/orchestrator.yaml`,
`k8s/pipeline-defaults.yaml`: the CPU tasks' resources).

The run config is one YAML for both paths: `parameters.config` becomes the pipeline's
`config` parameter, a JSON string (KFP parameters cannot hold nulls; override it per
run with the JSON of another RunConfig). Hardware, and whether a hyperparameter-search
task runs before training (`search`), are fixed at compile time. Checkpoints
go to `checkpoints.uri`, or under the run's pipeline root when fsspec can write there
(`s3://`, `gs://`, ...; not KFP's default `minio://`).
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as
# real types (Input[Dataset], Output[Model], ...), not strings.
import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Optional

from kfp import compiler, dsl, kubernetes
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from pipelines.k8s_defaults import ClusterDefaults
from pipelines.kfp_settings import TaskSettings, task_settings
from trainer.cluster import PodHardware
from trainer.config import (
    HF_TOKEN_KEY,
    HardwareConfig,
    RunConfig,
    model_entry,
    read_config_document,
    reconcile_model_facts,
    run_config_part,
)
from trainer.stages import ConfigVariant, PipelinePlan, Stage, pipeline_plan

logger = logging.getLogger(__name__)

PIPELINE_NAME = "st-finetune"
DEFAULT_IMAGE = "st-finetune:0.1.0"


# --- components: thin adapters between KFP artifacts and `trainer.stages` ---------------
# KFP ships each function's source into the pod, so every import lives inside it.


def preflight(config: str, pipeline_root: str) -> dict:
    """Every problem of the run found without a model; fails the run before anything heavy
    starts. The Hub token is the HF_TOKEN env var from the Secret `hub.secret_name`."""
    import os

    from trainer.config import HF_TOKEN_KEY, RunConfig
    from trainer.preflight import PreflightFailed
    from trainer.preflight import preflight as check_run

    report = check_run(
        RunConfig.model_validate_json(config),
        secret_exists=lambda _name: bool(os.environ.get(HF_TOKEN_KEY)),
        artifact_root=pipeline_root,
    )
    for warning in report.warnings:
        print(f"warning: {warning}", flush=True)
    if not report.ok:
        raise PreflightFailed(report)
    print(report.verdict(), flush=True)
    return report.model_dump(mode="json")


def load_datasets(config: str, train_data: Output[Dataset], eval_data: Output[Dataset]) -> dict:
    """Train and held-out DatasetDicts (saved with `save_to_disk`) plus the data report."""
    from trainer.config import RunConfig
    from trainer.stages import load_stage

    train, held_out, report = load_stage(RunConfig.model_validate_json(config))
    train.save_to_disk(train_data.path)
    held_out.save_to_disk(eval_data.path)
    return report.model_dump(mode="json")


def mine_hard_negatives(
    config: str, train_data: Input[Dataset], mined_data: Output[Dataset]
) -> dict:
    """(anchor, positive) rows -> (anchor, positive, negative_1..n) rows for the datasets
    that ask for it, from the training splits only; returns what mining did."""
    from datasets import load_from_disk

    from trainer.config import RunConfig
    from trainer.data import mine_hard_negatives_for_run

    mined, reports = mine_hard_negatives_for_run(
        RunConfig.model_validate_json(config), load_from_disk(train_data.path)
    )
    for report in reports.datasets.values():
        print(report.summary_line(), flush=True)
    mined.save_to_disk(mined_data.path)
    return reports.model_dump(mode="json")


def teacher_targets(
    config: str,
    train_data: Input[Dataset],
    eval_data: Input[Dataset],
    labelled_train_data: Output[Dataset],
    labelled_eval_data: Output[Dataset],
) -> dict:
    """Train and held-out splits with the teacher's `label` column (embeddings or scores)
    for the datasets whose loss has a teacher, computed once; returns what it computed."""
    from datasets import load_from_disk

    from trainer.config import RunConfig
    from trainer.data import teacher_targets_for_run

    train, held_out, reports = teacher_targets_for_run(
        RunConfig.model_validate_json(config),
        load_from_disk(train_data.path),
        load_from_disk(eval_data.path),
    )
    for report in reports.datasets.values():
        print(report.summary_line(), flush=True)
    train.save_to_disk(labelled_train_data.path)
    held_out.save_to_disk(labelled_eval_data.path)
    return reports.model_dump(mode="json")


def hyperparameter_search(
    config: str, train_data: Input[Dataset], eval_data: Input[Dataset], report: Output[HTML]
) -> NamedTuple("SearchOutputs", [("tuned_config", str), ("search", dict)]):
    """Search `config.search` (Optuna through the trainer). Returns the tuned config JSON
    (best trial's parameters applied, `search` cleared) that the train task and the card
    use, and the search result the card records."""
    from collections import namedtuple

    from datasets import load_from_disk

    from trainer.config import RunConfig
    from trainer.reports import render_search_html
    from trainer.training import apply_best, run_search

    run = RunConfig.model_validate_json(config)
    result = run_search(run, load_from_disk(train_data.path), load_from_disk(eval_data.path))
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(render_search_html(result))
    outputs = namedtuple("SearchOutputs", ["tuned_config", "search"])
    return outputs(apply_best(run, result).model_dump_json(), result.model_dump(mode="json"))


def train(
    config: str,
    train_data: Input[Dataset],
    eval_data: Input[Dataset],
    pipeline_root: str,
    run_name: str,
    run_id: str,
    image: str,
    model: Output[Model],
) -> dict:
    """Fine-tune with durable checkpoints (resumed by a retry): in this pod (several
    GPUs under torchrun), or on `hardware.nodes` nodes as a Kubeflow Trainer TrainJob
    this task submits and follows. The model is saved as a sentence-transformers folder."""
    from datasets import load_from_disk

    from trainer.cluster import cluster_for
    from trainer.config import RunConfig
    from trainer.models import save_model
    from trainer.results import RunRef
    from trainer.stages import TrainingSite, train_stage

    run = RunConfig.model_validate_json(config)
    site = TrainingSite(
        storage_root=pipeline_root,
        pipeline="st-finetune",
        run=RunRef(orchestrator="kubeflow", name=run_name, id=run_id, pipeline="st-finetune"),
        cluster=lambda run_config: cluster_for(run_config, image=image),
        log=lambda line: print(line, flush=True),
    )
    trained = train_stage(
        run, load_from_disk(train_data.path), load_from_disk(eval_data.path), site
    )
    save_model(trained.model, model.path)
    return trained.summary.model_dump(mode="json")


def evaluate(
    config: str,
    eval_data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
    training: dict = {},  # noqa: B006 (a KFP parameter default, never mutated)
) -> dict:
    """Base vs fine-tuned on identical evaluators; fine-tuned metrics shown in the KFP UI,
    and the evaluation report with the training curves."""
    from datasets import load_from_disk
    from sentence_transformers import SentenceTransformer

    from trainer.config import RunConfig
    from trainer.results import TrainingSummary
    from trainer.stages import evaluate_stage, evaluation_report

    run = RunConfig.model_validate_json(config)
    summary = TrainingSummary.model_validate(training) if training else None
    evaluation = evaluate_stage(
        run,
        SentenceTransformer(model.path),
        load_from_disk(eval_data.path),
        steps_trained=summary.global_step if summary is not None else None,
    )
    for key, value in evaluation.finetuned.items():
        metrics.log_metric(key, value)
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(evaluation_report(run, evaluation, summary))
    return evaluation.model_dump(mode="json")


def export(
    config: str,
    eval_data: Input[Dataset],
    model: Input[Model],
    evaluation: dict,
    onnx: Output[Model],
) -> dict:
    """ONNX (and int8) export of the fine-tuned model with pooling and normalization in
    the graph, checked against the PyTorch model (per-text cosine, gate metric); the
    exported folder is the `onnx` artifact the push publishes as `onnx/`."""
    from pathlib import Path

    from datasets import load_from_disk
    from sentence_transformers import SentenceTransformer

    from trainer.config import RunConfig
    from trainer.results import Evaluation
    from trainer.stages import export_stage

    report, _ = export_stage(
        RunConfig.model_validate_json(config),
        SentenceTransformer(model.path),
        load_from_disk(eval_data.path),
        Evaluation.model_validate(evaluation),
        folder=Path(onnx.path),
    )
    for line in report.lines():
        print(f"export: {line}", flush=True)
    return report.model_dump(mode="json")


def model_card(
    config: str,
    evaluation: dict,
    training: dict,
    data_report: dict,
    run_name: str,
    run_id: str,
    card: Output[Markdown],
    mining: dict = {},  # noqa: B006 (KFP parameter defaults, never mutated)
    search: dict = {},  # noqa: B006
    export_report: dict = {},  # noqa: B006
) -> None:
    """The Hub README.md (front matter + body), also rendered in the KFP UI. `config` is
    the one the model was trained with (tuned, when a search ran)."""
    from trainer.config import RunConfig
    from trainer.results import (
        DataReport,
        Evaluation,
        ExportReport,
        MiningReports,
        RunRef,
        SearchResult,
        TrainingSummary,
    )
    from trainer.stages import card_stage

    text = card_stage(
        RunConfig.model_validate_json(config),
        evaluation=Evaluation.model_validate(evaluation),
        training=TrainingSummary.model_validate(training),
        data=DataReport.model_validate(data_report),
        run=RunRef(orchestrator="kubeflow", name=run_name, id=run_id, pipeline="st-finetune"),
        mining=MiningReports.model_validate(mining) if mining else None,
        search=SearchResult.model_validate(search) if search else None,
        export=ExportReport.model_validate(export_report) if export_report else None,
    )
    with open(card.path, "w", encoding="utf-8") as handle:
        handle.write(text)


def push_to_hub(
    config: str,
    model: Input[Model],
    evaluation: dict,
    card: Input[Markdown],
    run_name: str,
    export_report: dict = {},  # noqa: B006 (a KFP parameter default, never mutated)
    onnx: Optional[Input[Model]] = None,  # noqa: UP045 (kfp reads Optional, not `| None`)
) -> dict:
    """Publish only if the gate passes and hub.enabled; the token is the HF_TOKEN env var.
    The last task: it ends with the run's closing lines (gate, push, where results are)."""
    import os
    import shutil
    from pathlib import Path

    from trainer.config import RunConfig
    from trainer.release import gated_push
    from trainer.results import Evaluation, ExportReport, RunRef
    from trainer.stages import finish_run

    def write_folder(folder):
        shutil.copytree(model.path, folder)
        shutil.copyfile(card.path, folder / "README.md")

    run, scores = RunConfig.model_validate_json(config), Evaluation.model_validate(evaluation)
    ref = RunRef(orchestrator="kubeflow", name=run_name)
    outcome = gated_push(
        run,
        scores,
        write_folder=write_folder,
        token=lambda: os.environ.get(HF_TOKEN_KEY, ""),
        run_label=ref.label(),
        log=lambda line: print(line, flush=True),
        export=ExportReport.model_validate(export_report) if export_report else None,
        export_folder=Path(onnx.path) if onnx is not None else None,
    )
    finish_run(
        run, evaluation=scores, push=outcome, run=ref, log=lambda line: print(line, flush=True)
    )
    return outcome.model_dump(mode="json")


# --- task configuration from the run config ------------------------------------------


def apply_hardware(
    task: dsl.PipelineTask, parts: PodHardware, hardware: HardwareConfig
) -> dsl.PipelineTask:
    """Give `task` the pod settings `trainer.cluster.pods` derived from `hardware`."""
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
    if hardware.gpu_resource in limits:
        # KFP's accelerator type on Kubernetes is the extended resource name.
        task.set_accelerator_type(hardware.gpu_resource)
        task.set_accelerator_limit(int(limits.pop(hardware.gpu_resource)))
    _set_resources(task, TaskSettings(requests=dict(parts.resources.requests or {}), limits=limits))
    for volume, mount in zip(parts.volumes, parts.volume_mounts, strict=True):
        if volume.persistent_volume_claim is not None:
            kubernetes.mount_pvc(
                task,
                pvc_name=volume.persistent_volume_claim.claim_name,
                mount_path=mount.mount_path,
            )
            continue
        kubernetes.empty_dir_mount(
            task,
            volume_name=volume.name,
            mount_path=mount.mount_path,
            medium=volume.empty_dir.medium,
            size_limit=volume.empty_dir.size_limit,
        )
    return task


def _set_resources(task: dsl.PipelineTask, settings: TaskSettings) -> None:
    setters: dict[tuple[str, str], Callable[[str], Any]] = {
        ("requests", "cpu"): task.set_cpu_request,
        ("requests", "memory"): task.set_memory_request,
        ("limits", "cpu"): task.set_cpu_limit,
        ("limits", "memory"): task.set_memory_limit,
    }
    for kind, values in (("requests", settings.requests), ("limits", settings.limits)):
        for name, value in values.items():
            if (kind, name) in setters:
                setters[kind, name](str(value))


def _configure(
    task: dsl.PipelineTask,
    document: dict[str, Any],
    plan: PipelinePlan,
    stage: Stage,
    defaults: ClusterDefaults,
) -> dsl.PipelineTask:
    """Display name, retries, resources (a training pod's from `config.hardware`, the
    others' from the run YAML) and, for the stages the plan gives it, the Hub token Secret."""
    step, run = stage.value, plan.config
    task.set_display_name(step)
    parts = plan.pod(stage)
    # The hardware owns a training pod's resources; a TrainJob submitter's come from YAML.
    owns = parts is not None and bool(parts.resources.requests or parts.resources.limits)
    step_default = defaults.pipeline.stage_resources(plan, stage)
    settings = task_settings(
        document,
        step,
        hardware_step=owns,
        stack_resources=defaults.pod_resources(),
        default_resources=step_default.manifest() if step_default else None,
    )
    if parts is not None and run.hardware is not None:
        apply_hardware(task, parts, run.hardware)
    if not owns:
        _set_resources(task, settings)
    if settings.retries:
        task.set_retry(num_retries=settings.retries)
    if plan[stage].hub_token:
        kubernetes.use_secret_as_env(
            task,
            secret_name=run.hub.secret_name,
            secret_key_to_env={HF_TOKEN_KEY: HF_TOKEN_KEY},
            # Publishing needs it; public Hub models and datasets download without.
            optional=stage is not Stage.PUSH,
        )
    return task


# --- the pipeline -------------------------------------------------------------------


def run_config(document: dict[str, Any]) -> RunConfig:
    """`parameters.config` of the run YAML, with the model name and license taken from
    its ZenML `model:` entry (they must agree where both are given)."""
    config = RunConfig.model_validate(run_config_part(document, "the run config"))
    name, license_ = model_entry(document)
    return reconcile_model_facts(config, model_name=name, license=license_)


def build_pipeline(
    document: dict[str, Any], image: str = DEFAULT_IMAGE, defaults: ClusterDefaults | None = None
) -> Any:
    """The KFP pipeline for a run YAML (the same YAML the ZenML path runs): the stages of
    `trainer.stages.pipeline_plan`, except those that need ZenML's model registry, with
    the cluster defaults of `k8s/` (or `defaults`) under the YAML's settings."""
    run = run_config(document)
    defaults = defaults or ClusterDefaults.read()
    if run.model.zenml_ref is not None:
        raise ValueError(
            f"model.name_or_path {run.model.name_or_path!r} is a ZenML model version, which "
            "only the ZenML pipeline can resolve; the Kubeflow build takes a Hub id, a "
            "package: or a path in the image"
        )
    loss_models = [
        f"datasets.{name}.loss.{role}"
        for name, dataset in run.datasets.items()
        for role in ("guide", "teacher")
        if getattr(dataset.loss, role) is not None and getattr(dataset.loss, role).zenml_ref
    ]
    if loss_models:
        raise ValueError(
            f"{', '.join(loss_models)} name(s) a ZenML model version, which only the ZenML "
            "pipeline can resolve; the Kubeflow build takes a Hub id, a package: or a path "
            "in the image"
        )
    if run.checkpoints.uri is None:
        logger.warning(
            "checkpoints.uri is not set: the train task keeps checkpoints under the run's "
            "pipeline root when it is an fsspec URL (s3://, gs://), else only in its pod"
        )
    plan = pipeline_plan(run)
    components = {
        Stage.PREFLIGHT: preflight,
        Stage.LOAD: load_datasets,
        Stage.MINE: mine_hard_negatives,
        Stage.TEACHER: teacher_targets,
        Stage.SEARCH: hyperparameter_search,
        Stage.TRAIN: train,
        Stage.EVALUATE: evaluate,
        Stage.EXPORT: export,
        Stage.CARD: model_card,
        Stage.PUSH: push_to_hub,
    }
    ops = {
        stage: dsl.component(func=fn, base_image=image, install_kfp_package=False)
        for stage, fn in components.items()
        if stage in plan
    }

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Fine-tune a sentence-transformers model; evaluate; card; gated Hub push.",
    )
    def finetune(config: str = run.model_dump_json()) -> None:
        configs: dict[ConfigVariant, Any] = {ConfigVariant.RUN: config, ConfigVariant.TUNED: config}

        def add(stage: Stage, **inputs: Any) -> dsl.PipelineTask:
            task = ops[stage](config=configs[plan[stage].config], **inputs)
            return _configure(task, document, plan, stage, defaults)

        checked = add(Stage.PREFLIGHT, pipeline_root=dsl.PIPELINE_ROOT_PLACEHOLDER)
        data = add(Stage.LOAD)
        data.after(checked)
        train_data, eval_data = data.outputs["train_data"], data.outputs["eval_data"]
        card_inputs: dict[str, Any] = {}
        if Stage.MINE in plan:
            mining = add(Stage.MINE, train_data=train_data)
            train_data = mining.outputs["mined_data"]
            card_inputs["mining"] = mining.outputs["Output"]
        # Training reads the teacher's labelled splits; evaluation the loaded held-out rows.
        train_eval_data = eval_data
        if Stage.TEACHER in plan:
            labelled = add(Stage.TEACHER, train_data=train_data, eval_data=eval_data)
            train_data = labelled.outputs["labelled_train_data"]
            train_eval_data = labelled.outputs["labelled_eval_data"]
        if Stage.SEARCH in plan:
            searched = add(Stage.SEARCH, train_data=train_data, eval_data=train_eval_data)
            configs[ConfigVariant.TUNED] = searched.outputs["tuned_config"]
            card_inputs["search"] = searched.outputs["search"]
        trained = add(
            Stage.TRAIN,
            train_data=train_data,
            eval_data=train_eval_data,
            pipeline_root=dsl.PIPELINE_ROOT_PLACEHOLDER,
            run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            image=image,
        )
        evaluated = add(
            Stage.EVALUATE,
            eval_data=eval_data,
            model=trained.outputs["model"],
            training=trained.outputs["Output"],
        )
        push_inputs: dict[str, Any] = {}
        if Stage.EXPORT in plan:
            exported = add(
                Stage.EXPORT,
                eval_data=eval_data,
                model=trained.outputs["model"],
                evaluation=evaluated.outputs["Output"],
            )
            card_inputs["export_report"] = exported.outputs["Output"]
            push_inputs = {
                "export_report": exported.outputs["Output"],
                "onnx": exported.outputs["onnx"],
            }
        card = add(
            Stage.CARD,
            evaluation=evaluated.outputs["Output"],
            training=trained.outputs["Output"],
            data_report=data.outputs["Output"],
            run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            **card_inputs,
        )
        add(
            Stage.PUSH,
            model=trained.outputs["model"],
            evaluation=evaluated.outputs["Output"],
            card=card.outputs["card"],
            run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            **push_inputs,
        )

    return finetune


def compile_pipeline(
    config_path: str | Path, output: str | Path, image: str = DEFAULT_IMAGE
) -> Path:
    """Compile the pipeline for `config_path` to `output` (YAML); offline."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    pipeline = build_pipeline(read_config_document(config_path), image)
    compiler.Compiler().compile(pipeline, package_path=str(output))
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compile the KFP v2 fine-tuning pipeline.")
    parser.add_argument("--config", default="configs/finetune-k8s.yaml")
    parser.add_argument(
        "--image",
        required=True,
        help="the image built from k8s/Dockerfile that every task runs, e.g. "
        f"REGISTRY/{DEFAULT_IMAGE}",
    )
    parser.add_argument("--output", default="build/finetune_kfp.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        print(compile_pipeline(args.config, args.output, args.image))
    except ValueError as error:  # a config this build cannot take: one line, not a traceback
        parser.exit(2, f"error: {args.config}: {error}\n")


if __name__ == "__main__":
    main()
