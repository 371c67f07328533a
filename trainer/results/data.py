"""What the load stage found in the data (rows, checks, leakage) and what mining did."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from trainer.results.base import FrozenResult


class DatasetLeakage(BaseModel):
    """Overlap of one held-out split with the training data."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    held_out_rows: int
    shared_queries: int
    """Held-out rows whose anchor is an anchor of some training dataset."""
    shared_queries_by_dataset: dict[str, int]
    """The same, per training dataset the anchor was found in (a row may count in several)."""
    shared_positives: int
    """Held-out rows whose positive is a positive of this dataset's training rows."""
    query_examples: list[str]
    positive_examples: list[str]


class LeakageReport(BaseModel):
    """Overlap per held-out split; logged as metadata and shown in the model card."""

    model_config = ConfigDict(frozen=True)

    datasets: dict[str, DatasetLeakage] = {}

    @property
    def shared_queries(self) -> int:
        return sum(leak.shared_queries for leak in self.datasets.values())

    def metadata(self) -> dict[str, dict[str, int]]:
        """Counts only (examples stay out of metadata: they may be sensitive text)."""
        return {
            name: {
                "held_out_rows": leak.held_out_rows,
                "shared_queries": leak.shared_queries,
                "shared_positives": leak.shared_positives,
            }
            for name, leak in self.datasets.items()
        }


class SourceReport(FrozenResult):
    """What the content checks found in one loaded source (`source` or `eval_source`)."""

    path: str
    split: str
    """`train` for `source` (before an `eval_size` split), `eval` for `eval_source`."""
    rows_read: int
    dropped_empty: int = 0
    """Rows dropped because a text column is empty or whitespace-only."""
    duplicate_rows: int = 0
    """Rows identical (all columns) to an earlier row; kept."""
    identical_text_rows: int = 0
    """Rows whose first two texts are equal (anchor == positive); kept."""


class DatasetReport(FrozenResult):
    """One named dataset after loading: sizes, columns and every warning, with counts."""

    name: str
    train_rows: int
    eval_rows: int
    columns: list[str]
    sources: list[SourceReport]
    warnings: list[str] = Field(default_factory=list)

    @property
    def dropped_empty(self) -> int:
        return sum(source.dropped_empty for source in self.sources)

    @property
    def duplicate_rows(self) -> int:
        return sum(source.duplicate_rows for source in self.sources)


class DataReport(FrozenResult):
    """All datasets of a run: for step metadata, the model card and a preflight.

    `leakage`: rows the held-out data shares with the training data (`trainer.data.leakage`),
    with `leakage_warnings` for overlap the run tolerated.
    """

    datasets: dict[str, DatasetReport]
    leakage: LeakageReport | None = None
    leakage_warnings: list[str] = Field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        found = [warning for report in self.datasets.values() for warning in report.warnings]
        return found + list(self.leakage_warnings)


class MiningReport(BaseModel):
    """What mining did to one dataset: logged as step metadata and shown in the card.

    `false_negatives_filtered` counts candidates among each anchor's `range_max` (+ its
    positives) nearest documents that scored above the margin threshold, i.e. too close
    to the labelled positive to trust as negatives; it is the number sentence-transformers
    prints as "Skipped N potential negatives due to the relative_margin", recomputed from
    the embeddings it produced because the library does not return it.
    """

    model_config = ConfigDict(frozen=True)

    dataset: str
    model: str
    rows_in: int
    rows_with_negatives: int
    rows_dropped: int
    num_negatives: int
    corpus_documents: int
    candidates_considered: int
    false_negatives_filtered: int
    margin: str
    seconds: float

    def summary_line(self) -> str:
        """One sentence for the step log."""
        return (
            f"mined {self.num_negatives} hard negative(s) for {self.rows_with_negatives:,} of "
            f"{self.rows_in:,} rows of {self.dataset!r} ({self.rows_dropped:,} dropped) from "
            f"{self.corpus_documents:,} documents with {self.model}; "
            f"{self.false_negatives_filtered:,} of {self.candidates_considered:,} candidates "
            f"filtered as probable false negatives ({self.margin}); {self.seconds:.1f} s"
        )


class MiningReports(BaseModel):
    """Mining reports of a run, keyed by dataset name (datasets that were not mined are absent)."""

    model_config = ConfigDict(frozen=True)

    datasets: dict[str, MiningReport] = {}

    def metadata(self) -> dict[str, dict[str, object]]:
        """JSON-friendly per-dataset facts for step metadata and the model card."""
        return {name: report.model_dump() for name, report in self.datasets.items()}


class TeacherReport(BaseModel):
    """What the teacher-targets stage computed for one dataset: logged as step metadata.

    `texts_encoded` counts the texts the teacher actually encoded (train and held-out
    rows, every text column it reads), so a resumed or retried training that reuses the
    stored targets shows no second report with new encodings.
    """

    model_config = ConfigDict(frozen=True)

    dataset: str
    teacher: str
    loss: str
    target: str
    """`embedding` (MSELoss) or `scores` (DistillKLDivLoss, MarginMSELoss)."""
    label_size: int
    """Floats per row in `label`: the teacher's embedding dimension, or one score per
    candidate column."""
    train_rows: int
    eval_rows: int
    texts_encoded: int
    seconds: float

    def summary_line(self) -> str:
        """One sentence for the step log."""
        what = (
            f"{self.label_size}-dim embeddings"
            if self.target == "embedding"
            else f"{self.label_size} scores per row"
        )
        return (
            f"teacher {self.teacher} labelled {self.train_rows:,} training and "
            f"{self.eval_rows:,} held-out rows of {self.dataset!r} for {self.loss} with "
            f"{what} ({self.texts_encoded:,} texts encoded, {self.seconds:.1f} s)"
        )


class TeacherReports(BaseModel):
    """Teacher-target reports of a run, keyed by dataset name (datasets without a teacher
    are absent)."""

    model_config = ConfigDict(frozen=True)

    datasets: dict[str, TeacherReport] = {}

    @property
    def texts_encoded(self) -> int:
        return sum(report.texts_encoded for report in self.datasets.values())

    def metadata(self) -> dict[str, dict[str, object]]:
        """JSON-friendly per-dataset facts for step metadata."""
        return {name: report.model_dump() for name, report in self.datasets.items()}
