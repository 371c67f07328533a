"""Resolve `zenml:<model>@<version>` base models (and guide / teacher models of a loss)
to a local folder, with lineage.

A scheduled retrain names its base as `zenml:<model>@production`: each run starts from
the version in production at that moment. The trainer core cannot resolve that (it has
no ZenML), so the step that trains calls `resolve_base_model` first and hands the
trainer a config whose `model.name_or_path` is a local folder holding that version's
`model` artifact (the train step's output, stored by `SentenceTransformerMaterializer`
in sentence-transformers' own folder layout, so resolving is a folder copy).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from zenml.client import Client
from zenml.enums import ModelStages
from zenml.utils import io_utils

from trainer.config import ZENML_PREFIX, ModelConfig, RunConfig, parse_zenml_model_ref
from trainer.results import ModelLineage

if TYPE_CHECKING:
    from zenml.models import ArtifactVersionResponse, ModelVersionResponse

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
"""Name of the train step's model output, hence of the artifact linked to each version."""


def _version_selector(version: str) -> str | int:
    """`production` / `latest` / ... as the stage, `7` as a version number, else a name."""
    if version in ModelStages.values():
        return version
    return int(version) if version.isdigit() else version


def _describe_versions(client: Client, model_name: str) -> str:
    versions = client.list_model_versions(model_name_or_id=model_name, size=50, hydrate=False)
    if not versions.items:
        return "it has no versions yet"
    listed = ", ".join(f"{v.name}" + (f" ({v.stage})" if v.stage else "") for v in versions.items)
    return f"its versions: {listed}"


def find_model_version(model_name: str, version: str, *, reference: str) -> ModelVersionResponse:
    """The model version a reference names; ValueError naming what exists otherwise."""
    client = Client()
    try:
        client.get_model(model_name)
    except KeyError:
        models = ", ".join(m.name for m in client.list_models(size=50).items) or "none"
        raise ValueError(f"{reference}: no ZenML model {model_name!r}; models: {models}") from None
    try:
        return client.get_model_version(model_name, _version_selector(version))
    except KeyError:
        what = f"in stage {version!r}" if version in ModelStages.values() else f"{version!r}"
        raise ValueError(
            f"{reference}: model {model_name!r} has no version {what}; "
            f"{_describe_versions(client, model_name)}"
        ) from None


def _model_artifact(model_version: ModelVersionResponse, reference: str) -> ArtifactVersionResponse:
    artifact = model_version.get_artifact(MODEL_ARTIFACT)
    if artifact is None:
        linked = Client().list_artifact_versions(model_version_id=model_version.id, size=50)
        names = ", ".join(sorted({a.name for a in linked.items})) or "none"
        raise ValueError(
            f"{reference}: version {model_version.name} of {model_version.model.name!r} has no "
            f"{MODEL_ARTIFACT!r} artifact (linked artifacts: {names}); only versions made by a "
            "pipeline whose train step outputs 'model' can be a base model"
        )
    return artifact


def _materialize(artifact: ArtifactVersionResponse, target: Path) -> None:
    """Copy the stored model folder; load + save for artifacts another materializer wrote."""
    # Imported here: it imports sentence-transformers (and torch), which the preflight
    # step, also a user of this module, must not pay for.
    from steps.materializers import MODEL_DIR, SentenceTransformerMaterializer

    materializer = artifact.materializer.import_path if artifact.materializer else ""
    if materializer.endswith(SentenceTransformerMaterializer.__name__):
        io_utils.copy_dir(os.path.join(artifact.uri, MODEL_DIR), str(target), overwrite=True)
        return
    model = artifact.load()
    if not hasattr(model, "encode") or not hasattr(model, "save"):
        raise ValueError(
            f"artifact {artifact.name!r} ({artifact.id}) holds a {type(model).__name__}, "
            "not a SentenceTransformer"
        )
    model.save(str(target))


def resolve_zenml_model(
    reference: str, *, target_dir: str | Path | None = None
) -> tuple[Path, ModelLineage]:
    """`zenml:<model>@<version>` -> (local model folder, lineage).

    `target_dir` receives the folder (default: a new temp dir, left for the run to use).
    """
    parsed = parse_zenml_model_ref(reference)
    if parsed is None:
        raise ValueError(f"{reference!r} is not a '{ZENML_PREFIX}<model>@<version>' reference")
    model_name, version = parsed
    model_version = find_model_version(model_name, version, reference=reference)
    artifact = _model_artifact(model_version, reference)
    target = Path(target_dir) if target_dir else Path(tempfile.mkdtemp(prefix="base-model-"))
    _materialize(artifact, target)
    lineage = ModelLineage(
        reference=reference,
        model_name=model_name,
        version_name=model_version.name,
        version_number=model_version.number,
        stage=model_version.stage,
        artifact_id=str(artifact.id),
        producer_run_id=(
            str(artifact.producer_pipeline_run_id) if artifact.producer_pipeline_run_id else None
        ),
    )
    return target, lineage


def resolve_base_model(
    config: RunConfig, *, target_dir: str | Path | None = None
) -> tuple[RunConfig, ModelLineage | None]:
    """The config to train with: a `zenml:` base replaced by a local folder, plus lineage.

    Any other base (local folder, Hub id, `package:`) comes back unchanged with None.
    """
    if config.model.zenml_ref is None:
        return config, None
    folder, lineage = resolve_zenml_model(config.model.name_or_path, target_dir=target_dir)
    model = config.model.model_copy(update={"name_or_path": str(folder)})
    return config.model_copy(update={"model": model}), lineage


def production_model(
    model_name: str, *, target_dir: str | Path | None = None
) -> tuple[Path, ModelLineage] | None:
    """The current production version of `model_name` as a local folder, or None when the
    model or its production version does not exist yet (the first run of a schedule)."""
    client = Client()
    try:
        client.get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:
        return None
    return resolve_zenml_model(f"{ZENML_PREFIX}{model_name}@production", target_dir=target_dir)


def lineage_model_folder(lineage: ModelLineage, *, target_dir: str | Path | None = None) -> Path:
    """The exact weights a lineage names, as a local folder: what the evaluate step loads
    as "the base" of a run that started from a ZenML version (resolving the reference
    again could give another version if production moved in between)."""
    artifact = Client().get_artifact_version(lineage.artifact_id)
    target = Path(target_dir) if target_dir else Path(tempfile.mkdtemp(prefix="base-model-"))
    _materialize(artifact, target)
    return target


LOSS_MODELS_DIR = Path(tempfile.gettempdir()) / "st-finetune-loss-models"
"""Where `zenml:` guides and teachers are materialized: one folder per model artifact, so
the resolved path (part of the config, hence of the checkpoint series' digest) is the
same on every run that uses the same version and changes when the version does."""


def resolve_loss_models(
    config: RunConfig, *, roles: tuple[str, ...] = ("guide", "teacher")
) -> RunConfig:
    """The config with every `zenml:` model of `roles` (`datasets.<name>.loss.guide` /
    `.teacher`) replaced by a local folder holding that version's weights, so the trainer
    core (which has no ZenML) loads it like any other folder. Each reference is resolved
    once; other references come back unchanged."""
    folders: dict[str, str] = {}

    def local(model: ModelConfig | None) -> ModelConfig | None:
        if model is None or model.zenml_ref is None:
            return model
        reference = model.name_or_path
        if reference not in folders:
            model_name, version = model.zenml_ref
            artifact = _model_artifact(
                find_model_version(model_name, version, reference=reference), reference
            )
            target = LOSS_MODELS_DIR / str(artifact.id)
            _materialize(artifact, target)
            logger.info("%s: artifact %s in %s", reference, artifact.id, target)
            folders[reference] = str(target)
        return model.model_copy(update={"name_or_path": folders[reference]})

    datasets = {}
    for name, dataset in config.datasets.items():
        loss = dataset.loss.model_copy(
            update={role: local(getattr(dataset.loss, role)) for role in roles}
        )
        datasets[name] = dataset.model_copy(update={"loss": loss})
    return config.model_copy(update={"datasets": datasets})
