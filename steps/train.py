"""Step: fine-tune the base model with durable checkpoints and automatic resume.

On Kubernetes this is the step that lands on a GPU node (the pipeline gives it the pod
settings built from `config.hardware`). Its checkpoints live in the artifact store, in
a folder named after the pipeline, the model and a digest of the training config, so a
retried pod or a re-run of the same config continues where the last attempt stopped.
A `zenml:<model>@<version>` base is resolved here, at run time, so a scheduled retrain
starts from whatever is in production when it runs. Several GPUs train under torchrun
in this pod; `hardware.nodes > 1` trains on several nodes as a Kubeflow Trainer TrainJob
that this step submits and waits for.
"""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from sentence_transformers import SentenceTransformer
from zenml import get_step_context, step
from zenml.logger import get_logger

from steps._cluster import current_cluster
from steps._context import artifact_store_location, run_ref, unfinished_earlier_run
from steps._metadata import log_step_metadata
from steps._models import resolve_base_model, resolve_loss_models
from steps._tracking import mlflow_tracked, training_callbacks
from steps.materializers import SentenceTransformerMaterializer
from trainer.config import RunConfig
from trainer.results import TrainingSummary
from trainer.stages import TrainingSite, train_stage
from trainer.training import log_run_parameters, log_run_tags, log_training_history, run_tags

logger = get_logger(__name__)


@step(output_materializers={"model": SentenceTransformerMaterializer})
def train(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict,
) -> tuple[Annotated[SentenceTransformer, "model"], Annotated[TrainingSummary, "training"]]:
    """The fine-tuned model and how it was trained (steps, loss, resume, checkpoints)."""
    config, lineage = resolve_base_model(config)
    config = resolve_loss_models(config, roles=("guide",))  # training never loads a teacher
    if lineage is not None:
        logger.info("base model: %s", lineage.describe())
    root, filesystem = artifact_store_location()
    run = run_ref()
    site = TrainingSite(
        storage_root=root,
        pipeline=get_step_context().pipeline.name,
        run=run,
        filesystem=filesystem,
        base_model_id=lineage.artifact_id if lineage else None,
        cluster=current_cluster,
        callbacks=training_callbacks(config),
        log=logger.info,
    )
    if mlflow_tracked():
        # The run's own parameters and tags first, before the trainer logs its arguments.
        train_rows = {name: len(dataset) for name, dataset in train_datasets.items()}
        eval_rows = {name: len(dataset) for name, dataset in eval_datasets.items()}
        log_run_parameters(config, train_rows, eval_rows)
        log_run_tags(run_tags(config, run.label()))
    trained = train_stage(config, train_datasets, eval_datasets, site)
    summary = trained.summary.model_copy(update={"lineage": lineage})
    if mlflow_tracked() and summary.world_size > 1:
        # The ranks could not stream curves from their processes.
        log_training_history(summary.history)
    metadata = summary.metadata()
    interrupted = unfinished_earlier_run(summary.resume, run)
    if interrupted is not None:
        logger.warning(
            "run %s, whose checkpoint this training continued, is still shown as running: "
            "it was stopped without a chance to report it (e.g. SIGKILL). Remove it with "
            "`zenml pipeline runs delete %s`",
            interrupted,
            interrupted,
        )
        metadata["interrupted_run"] = interrupted
    log_step_metadata(metadata)
    return trained.model, summary
