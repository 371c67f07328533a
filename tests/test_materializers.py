"""The Arrow-native `DatasetDict` materializer: round trip, metadata, preview, and the
load step storing its outputs with it in a real pipeline on the local stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated

import pytest
from datasets import Dataset, DatasetDict
from zenml import pipeline, step

from steps.dataset_materializer import DATASETS_DIR, PREVIEW_FILE, DatasetDictMaterializer
from steps.load_datasets import load_datasets
from tests.conftest import REPO_ROOT, docs_pipeline_config
from trainer.config import RunConfig


@step
def count_rows(train_datasets: DatasetDict) -> Annotated[int, "rows"]:
    """A consumer step: loads the artifact back through the materializer."""
    return sum(dataset.num_rows for dataset in train_datasets.values())


@pipeline(enable_cache=False)
def load_only(config: RunConfig) -> None:
    train_datasets, _, _ = load_datasets(config=config)
    count_rows(train_datasets=train_datasets)


@pytest.fixture
def materializer(zenml_client) -> DatasetDictMaterializer:
    root = zenml_client.active_stack.artifact_store.path
    return DatasetDictMaterializer(os.path.join(root, "materializer-tests", uuid.uuid4().hex))


@pytest.fixture
def no_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if anything converts a dataset to pandas (what made the old step use 2.6 GB)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted a dataset to pandas")

    monkeypatch.setattr(Dataset, "to_pandas", refuse)


def _datasets() -> DatasetDict:
    pairs = Dataset.from_list(
        [{"anchor": f"<q{i}>", "positive": f"answer {i} " * 40} for i in range(50)]
    )
    scored = Dataset.from_list([{"s1": "a", "s2": "b", "score": 0.5}] * 3)
    # An index mapping (as a split or max_samples leaves it) must be saved as its rows.
    return DatasetDict({"docs": pairs.shuffle(seed=0).select(range(20)), "sts": scored})


def test_round_trip_metadata_and_preview(materializer: DatasetDictMaterializer, no_pandas) -> None:
    from zenml.enums import VisualizationType
    from zenml.io import fileio

    datasets = _datasets()
    materializer.save(datasets)
    metadata = materializer.extract_metadata(datasets)
    visualizations = materializer.save_visualizations(datasets)

    loaded = materializer.load(DatasetDict)
    assert set(loaded) == {"docs", "sts"}
    assert loaded["docs"].to_list() == datasets["docs"].to_list()
    assert loaded["sts"]["score"] == [0.5, 0.5, 0.5]

    assert metadata["splits"] == ["docs", "sts"]
    assert metadata["num_rows"] == {"docs": 20, "sts": 3}
    assert metadata["columns"] == {"docs": ["anchor", "positive"], "sts": ["s1", "s2", "score"]}
    stored = metadata["stored_bytes"]
    assert stored["docs"] > 20 * 40 * 8  # the selected rows' texts, not an index file
    assert 0 < stored["sts"] < stored["docs"]

    (path,) = visualizations
    assert path == os.path.join(materializer.uri, PREVIEW_FILE)
    assert visualizations[path] == VisualizationType.HTML
    with fileio.open(path, "r") as file:
        preview = file.read()
    assert "<h3>docs: 20 rows</h3>" in preview
    assert preview.count("<tr>") == 5 + 1 + 3 + 1  # 5 preview rows + header, 3 rows + header
    assert "&lt;q" in preview and "<q" not in preview.replace("<h3>", "")


def test_empty_dataset_dict_round_trips(materializer: DatasetDictMaterializer) -> None:
    materializer.save(DatasetDict({}))
    assert materializer.extract_metadata(DatasetDict({}))["num_rows"] == {}
    assert dict(materializer.load(DatasetDict)) == {}
    assert os.path.isdir(os.path.join(materializer.uri, DATASETS_DIR))


@pytest.mark.slow
def test_load_step_stores_its_datasets_with_the_arrow_materializer(
    zenml_client, tiny_model_path: Path, pairs_file: Path
) -> None:
    from zenml.enums import ExecutionStatus

    config = RunConfig.model_validate(docs_pipeline_config(tiny_model_path, pairs_file))
    run = zenml_client.get_pipeline_run(load_only(config=config).id)
    assert run.status == ExecutionStatus.COMPLETED
    artifact = run.steps["load_datasets"].outputs["train_datasets"][0]
    assert artifact.materializer.import_path == "steps.dataset_materializer.DatasetDictMaterializer"
    assert artifact.run_metadata["num_rows"] == {"docs": 45}
    assert artifact.run_metadata["columns"] == {"docs": ["anchor", "positive"]}
    assert run.steps["count_rows"].outputs["rows"][0].load() == 45
    held_out = run.steps["load_datasets"].outputs["eval_datasets"][0].load()
    assert held_out["docs"].num_rows == 15


LIGHT_POD = """
import sys
from steps.{module} import {module}
from trainer.config.run import RunConfig
RunConfig.model_validate({
    "model": {"name_or_path": "x"},
    "datasets": {"d": {"source": {"path": "a.jsonl"}, "loss": {
        "name": "MultipleNegativesRankingLoss", "params": {"scale": 20.0}}}},
    "training": {"learning_rate": 1e-5, "lr_scheduler_type": "cosine"},
})
print(sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules))
"""


@pytest.mark.slow
@pytest.mark.parametrize("module", ["load_datasets", "preflight"])
def test_light_step_pods_never_import_torch(tmp_path: Path, module: str) -> None:
    """What a Kubernetes pod of the load or preflight step imports: its step module, then
    it validates the run config. Neither may pull in torch (about 570 MiB resident)."""
    script = tmp_path / "light_pod.py"  # ZenML wants a main module with a file
    script.write_text(LIGHT_POD.replace("{module}", module))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "[]"


@pytest.mark.slow
def test_the_model_materializer_keeps_a_trained_adapter(
    zenml_client, tiny_model_path: Path, tmp_path: Path
) -> None:
    """A model trained with `model.adapter.export: adapter` is stored with its `adapter/`
    and comes back with it, so the push step (another step) can publish it."""
    from steps.materializers import MODEL_DIR, SentenceTransformerMaterializer
    from tests.conftest import build_adapted_model
    from trainer.models import ADAPTER_FOLDER, kept_adapter, load_saved_model

    saved = build_adapted_model(tiny_model_path, tmp_path / "saved")
    root = zenml_client.active_stack.artifact_store.path
    materializer = SentenceTransformerMaterializer(
        os.path.join(root, "materializer-tests", uuid.uuid4().hex)
    )
    materializer.save(load_saved_model(saved, device="cpu"))
    stored = Path(materializer.uri) / MODEL_DIR / ADAPTER_FOLDER / "adapter_model.safetensors"
    assert (
        stored.read_bytes() == (saved / ADAPTER_FOLDER / "adapter_model.safetensors").read_bytes()
    )
    kept = kept_adapter(materializer.load(object))
    assert kept is not None and kept.config["r"] == 4
