"""Teacher targets: the `label` column a distillation loss learns, computed once.

MSELoss, DistillKLDivLoss and MarginMSELoss (with `loss.teacher`) train the student on
what a teacher model says about the same texts. sentence-transformers takes that as a
`label` column; computing it inside the loss would encode every text with the teacher
again at every epoch (and again on every resume). So a stage of its own computes it
once, after loading and mining, for the training and the held-out split (the trainer's
eval loss needs labels too), and the labelled datasets are the artifact training reads:
a retried or resumed training step starts from them and never loads the teacher.

What the teacher writes (`LossSpec.teacher`):

* `embedding` (MSELoss): its embedding of the first text column, a list of floats. The
  other columns, if any, regress onto the same vector: sentence-transformers' convention
  for multilingual distillation (source sentence, translation).
* `scores` (DistillKLDivLoss, MarginMSELoss): its similarity of the first column (the
  query) to each other column, `[score(q, positive), score(q, negative_1), ...]`, with
  the loss's own `similarity_fct`, so teacher and student scores are on one scale.
  MarginMSELoss takes these and trains on the margins `positive - negative_i`.

Memory stays bounded: rows are labelled in chunks of `CHUNK_ROWS` with `Dataset.map`,
which writes each chunk's labels out before the next one is encoded, so only one chunk
of embeddings is held at a time besides the model and the column being written.
Prompts are not applied: a dataset's `prompt` is for the student, and the teacher is
another model.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict, Features, List, Value

from trainer.catalog import LABEL_COLUMNS, LOSS_SPECS, TeacherTarget, similarity_function_name
from trainer.config import LossConfig, ModelConfig, RunConfig
from trainer.logs import encoding_progress
from trainer.models import load_model as load_teacher_model
from trainer.results import TeacherReport, TeacherReports

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

CHUNK_ROWS = 1024
"""Rows labelled per `Dataset.map` batch: the embeddings held in memory at once."""

ENCODE_BATCH_SIZE = 64
"""Texts per forward pass of the teacher."""

TeacherLoader = Callable[[ModelConfig], "SentenceTransformer"]


def teacher_datasets(config: RunConfig) -> list[str]:
    """Names of the datasets whose loss has a teacher (the stage runs when any has)."""
    return [name for name, dataset in config.datasets.items() if dataset.loss.teacher is not None]


def _similarity(loss: LossConfig) -> Callable[..., Any]:
    """The pairwise similarity the loss scores with: `params.similarity_fct`, else the
    loss class's own default."""
    from sentence_transformers import util
    from sentence_transformers.sentence_transformer import losses

    named = loss.params.get("similarity_fct")
    if isinstance(named, str):
        return getattr(util, similarity_function_name(named))
    default = inspect.signature(getattr(losses, loss.name)).parameters["similarity_fct"].default
    return default


class _Labeller:
    """Computes one chunk's labels with the teacher; counts the texts it encodes."""

    def __init__(
        self, teacher: SentenceTransformer, target: TeacherTarget, loss: LossConfig
    ) -> None:
        self.teacher = teacher
        self.target = target
        self.similarity = _similarity(loss) if target == "scores" else None
        self.texts_encoded = 0

    def _encode(self, texts: list[str]) -> Any:
        self.texts_encoded += len(texts)
        return self.teacher.encode(
            texts, batch_size=ENCODE_BATCH_SIZE, convert_to_tensor=True, show_progress_bar=False
        )

    def __call__(self, batch: dict[str, list[Any]], columns: list[str]) -> dict[str, list[Any]]:
        import torch

        first = self._encode(batch[columns[0]])
        if self.target == "embedding":
            return {"label": first.float().cpu().tolist()}
        assert self.similarity is not None
        scores = [self.similarity(first, self._encode(batch[column])) for column in columns[1:]]
        return {"label": torch.stack(scores, dim=1).float().cpu().tolist()}


def label_dataset(
    dataset: Dataset, teacher: SentenceTransformer, loss: LossConfig, *, what: str
) -> tuple[Dataset, int, int]:
    """`dataset` with the teacher's `label` column added, in bounded memory; returns it,
    the floats per label and the number of texts the teacher encoded."""
    target = LOSS_SPECS[loss.name].teacher
    if target is None:
        raise ValueError(f"{what}: loss {loss.name} takes no teacher")
    columns = [column for column in dataset.column_names if column not in LABEL_COLUMNS]
    labeller = _Labeller(teacher, target, loss)
    size = (teacher.get_embedding_dimension() or 0) if target == "embedding" else len(columns) - 1
    features = Features(
        {
            **{column: dataset.features[column] for column in dataset.column_names},
            "label": List(Value("float32"), length=size),
        }
    )
    texts = len(dataset) * (1 if target == "embedding" else len(columns))
    with encoding_progress(teacher, texts, what):
        labelled = dataset.map(
            labeller,
            batched=True,
            batch_size=CHUNK_ROWS,
            fn_kwargs={"columns": columns},
            features=features,
            desc=what,
        )
    return labelled, size, labeller.texts_encoded


def teacher_targets_for_run(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict,
    *,
    load_model: TeacherLoader = load_teacher_model,
) -> tuple[DatasetDict, DatasetDict, TeacherReports]:
    """Label the training and held-out splits of every dataset whose loss has a teacher;
    pass the others through. Each teacher is loaded once, however many datasets use it.
    The text columns were checked against the loss when loaded (and mined)."""
    loaded: dict[ModelConfig, SentenceTransformer] = {}
    train_out, eval_out = dict(train_datasets), dict(eval_datasets)
    reports: dict[str, TeacherReport] = {}
    for name in teacher_datasets(config):
        loss = config.datasets[name].loss
        teacher_config = loss.teacher
        assert teacher_config is not None
        if teacher_config not in loaded:
            loaded[teacher_config] = load_model(teacher_config)
        teacher = loaded[teacher_config]
        started = time.perf_counter()
        encoded = size = 0
        rows = {"train": 0, "eval": 0}
        for split, datasets in (("train", train_out), ("eval", eval_out)):
            if name not in datasets:
                continue
            what = f"teacher targets for {name!r} ({split})"
            datasets[name], size, count = label_dataset(datasets[name], teacher, loss, what=what)
            encoded += count
            rows[split] = len(datasets[name])
        target = LOSS_SPECS[loss.name].teacher
        reports[name] = TeacherReport(
            dataset=name,
            teacher=teacher_config.name_or_path,
            loss=loss.name,
            target=str(target),
            label_size=size,
            train_rows=rows["train"],
            eval_rows=rows["eval"],
            texts_encoded=encoded,
            seconds=round(time.perf_counter() - started, 2),
        )
    return DatasetDict(train_out), DatasetDict(eval_out), TeacherReports(datasets=reports)
