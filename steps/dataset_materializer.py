"""ZenML materializer for the training and held-out `DatasetDict`s the load step stores.

ZenML's `datasets` materializer stores a `DatasetDict` with `save_to_disk` but computes
its metadata through `to_pandas()` on every split: for 1M pairs that copy is most of the
load step's 2.6 GB peak memory. This one stores the same `save_to_disk` folder and reads
its metadata from the Arrow tables and the written files, and its preview from the first
rows only, so memory stays at what the Arrow data itself needs.

It imports only `datasets` and ZenML: a load-step pod that imports it (and not the model
materializer next door) never imports torch.
"""

from __future__ import annotations

import html
import os
from typing import Any, ClassVar

from datasets import Dataset, DatasetDict, load_from_disk
from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType
from zenml.utils import io_utils

DATASETS_DIR = "datasets"
PREVIEW_FILE = "preview.html"
PREVIEW_ROWS = 5
PREVIEW_CHARS = 200


class DatasetDictMaterializer(BaseMaterializer):
    """A `DatasetDict` as a `save_to_disk` folder; metadata and preview without pandas.

    Loading memory-maps the Arrow files (`load_from_disk`), so a consumer step pays for
    the rows it touches, not for the whole dataset.
    """

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DatasetDict,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> DatasetDict:
        """Copy the folder from the (possibly remote) artifact store, then memory-map it."""
        with self.get_temporary_directory(delete_at_exit=False) as temp_dir:
            io_utils.copy_dir(os.path.join(self.uri, DATASETS_DIR), temp_dir)
            return load_from_disk(temp_dir)

    def save(self, datasets: DatasetDict) -> None:
        """Write with `save_to_disk` (streams Arrow record batches), then copy to the store."""
        with self.get_temporary_directory(delete_at_exit=True) as temp_dir:
            path = os.path.join(temp_dir, DATASETS_DIR)
            datasets.save_to_disk(path)
            io_utils.copy_dir(path, os.path.join(self.uri, DATASETS_DIR))

    def _stored_bytes(self, split: str) -> int:
        """Bytes of a split's Arrow files as written to the artifact store."""
        folder = os.path.join(self.uri, DATASETS_DIR, split)
        if not fileio.isdir(folder):
            return 0
        return sum(
            int(fileio.size(os.path.join(folder, name)) or 0)
            for name in fileio.listdir(folder)
            if str(name).endswith(".arrow")
        )

    def extract_metadata(self, datasets: DatasetDict) -> dict[str, MetadataType]:
        """Rows, columns and stored bytes per split, from Arrow schemas and file sizes."""
        return {
            "splits": list(datasets),
            "num_rows": {split: int(dataset.num_rows) for split, dataset in datasets.items()},
            "columns": {split: list(dataset.column_names) for split, dataset in datasets.items()},
            "stored_bytes": {split: self._stored_bytes(split) for split in datasets},
        }

    def save_visualizations(self, datasets: DatasetDict) -> dict[str, VisualizationType]:
        """An HTML table of the first rows of each split; only those rows are read."""
        sections = [_preview_section(split, dataset) for split, dataset in datasets.items()]
        path = os.path.join(self.uri, PREVIEW_FILE)
        with fileio.open(path, "w") as file:
            file.write("\n".join(sections) or "<p>no splits</p>")
        return {path: VisualizationType.HTML}


def _preview_section(split: str, dataset: Dataset) -> str:
    head = dataset.select(range(min(PREVIEW_ROWS, dataset.num_rows))).to_list()
    header = "".join(f"<th>{html.escape(column)}</th>" for column in dataset.column_names)
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(row[column])[:PREVIEW_CHARS])}</td>"
            for column in dataset.column_names
        )
        + "</tr>"
        for row in head
    )
    return (
        f"<h3>{html.escape(split)}: {dataset.num_rows:,} rows</h3>"
        f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"
    )
