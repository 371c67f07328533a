"""ZenML materializer for the fine-tuned model (and the import path of the datasets one).

ZenML has no materializer for `SentenceTransformer` and would fall back to cloudpickle,
which ties the artifact to one Python version and cannot be opened by anything else.
This one stores the model exactly as `SentenceTransformer.save` lays it out, so an
artifact folder is loadable with `SentenceTransformer(path)` and pushable to the Hub.

The `DatasetDict` materializer lives in `steps.dataset_materializer`, so that the load
step does not import sentence-transformers and torch; it is importable from here too,
under the path artifacts stored before the split recorded.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from sentence_transformers import SentenceTransformer
from zenml.enums import ArtifactType, VisualizationType

# Importing the module registers ZenML's `datasets` materializer, which does not
# auto-activate with datasets 5.x (its integration pins older versions).
from zenml.integrations.huggingface.materializers.huggingface_datasets_materializer import (  # noqa: F401
    HFDatasetMaterializer,
)
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType
from zenml.utils import io_utils

from steps.dataset_materializer import DatasetDictMaterializer
from trainer.models import load_saved_model, save_model

__all__ = ["DatasetDictMaterializer", "SentenceTransformerMaterializer"]

MODEL_DIR = "model"


class SentenceTransformerMaterializer(BaseMaterializer):
    """Saves a SentenceTransformer in its native folder layout under the artifact URI."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (SentenceTransformer,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> SentenceTransformer:
        """Copy the folder from the (possibly remote) artifact store and load it."""
        with self.get_temporary_directory(delete_at_exit=False) as temp_dir:
            io_utils.copy_dir(os.path.join(self.uri, MODEL_DIR), temp_dir)
            return load_saved_model(temp_dir, local_files_only=True)

    def save(self, model: SentenceTransformer) -> None:
        """Save locally with sentence-transformers, then copy into the artifact store."""
        with self.get_temporary_directory(delete_at_exit=True) as temp_dir:
            save_model(model, temp_dir)
            io_utils.copy_dir(temp_dir, os.path.join(self.uri, MODEL_DIR))

    def save_visualizations(self, model: SentenceTransformer) -> dict[str, VisualizationType]:
        """Show the card sentence-transformers wrote next to the weights, if any."""
        card = os.path.join(self.uri, MODEL_DIR, "README.md")
        return {card: VisualizationType.MARKDOWN} if fileio.exists(card) else {}

    def extract_metadata(self, model: SentenceTransformer) -> dict[str, MetadataType]:
        """Facts about the model that the dashboard shows next to the artifact."""
        return {
            "embedding_dimension": int(model.get_embedding_dimension() or 0),
            "max_seq_length": int(model.max_seq_length or 0),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "modules": [type(module).__name__ for module in model],
        }
