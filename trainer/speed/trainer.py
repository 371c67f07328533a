"""`SentenceTransformerTrainer` whose data loaders read the pre-tokenized twins of its datasets.

The trainer keeps the datasets it was given, with their texts: the model card, column
validation, the `dataset_name` routing column and every batch sampler see exactly what
they see in plain sentence-transformers (`no_duplicates` compares texts, so it must).
Only when a data loader is built does it read the token twin instead, row for row at the
same indices, through `PreTokenizedCollator`. Both hooks used are the public override
points sentence-transformers documents: `get_*_dataloader` and `get_batch_sampler`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler
from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
from torch.utils.data import BatchSampler, DataLoader, IterableDataset

from trainer.speed.tokenize import TokenizedDataset

if TYPE_CHECKING:
    import torch


class FastPathTrainer(SentenceTransformerTrainer):
    """Trains on token twins; `speed_report` says which speed levers this run used.

    `train_twins` / `eval_twins` map a dataset name (None for a single dataset) to its
    `TokenizedDataset`; None trains exactly like `SentenceTransformerTrainer`.
    """

    def __init__(
        self,
        *args: Any,
        speed_report: Any = None,
        train_twins: dict[str | None, TokenizedDataset] | None = None,
        eval_twins: dict[str | None, TokenizedDataset] | None = None,
        hashed_duplicates: bool = False,
        **kwargs: Any,
    ) -> None:
        self.speed_report = speed_report
        self._hashed_duplicates = hashed_duplicates
        self._text_of: dict[int, Dataset] = {}
        super().__init__(*args, **kwargs)
        self._train_loader_data = self._loader_data(train_twins, self.train_dataset, "train")
        self._eval_loader_data = self._loader_data(eval_twins, self.eval_dataset, "eval")

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """Save model files from the writing rank only.

        transformers 5.24 calls `Trainer._save` on every rank and leaves the rank check
        to it; sentence-transformers 6.2 overrides `_save` assuming only rank 0 calls it,
        so under DDP all ranks of a node would write the same checkpoint files at once.
        """
        if self.args.should_save:
            super()._save(output_dir, state_dict)

    def _init_training_state(
        self,
        max_steps: int,
        num_update_steps_per_epoch: int,
        num_train_epochs: int,
        resume_from_checkpoint: str | None,
        trial: Any,
    ) -> tuple[int, int]:
        """Where a resumed run continues in a stream it has read more than once.

        transformers 5.24 counts a pass over a stream (a dataset without length) as
        `max_steps` steps, so a run resumed in its second or later pass would skip
        `global_step` batches from the start of a fresh pass: past its end, then on from
        the start of the next. The restored state's `epoch` says how many passes ended and
        what fraction of `max_steps` x accumulation batches the current one has read (its
        `epoch + (step + 1) / steps_in_epoch`): continue exactly there.
        """
        epochs, skipped = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        passes = math.floor(self.state.epoch or 0)
        if skipped > 0 and passes >= 1 and isinstance(self.train_dataset, IterableDataset):
            batches = max_steps * self.args.gradient_accumulation_steps
            return passes, round((self.state.epoch - passes) * batches)
        return epochs, skipped

    def _loader_data(
        self,
        twins: dict[str | None, TokenizedDataset] | None,
        texts: Dataset | DatasetDict | None,
        kind: str,
    ) -> Dataset | DatasetDict | None:
        """The twin shaped like `texts`, with the `dataset_name` column the trainer added there."""
        if twins is None or texts is None:
            return None
        if isinstance(texts, DatasetDict):
            # sentence-transformers' own step: a lazy `dataset_name` column when it routes.
            twin = self.preprocess_dataset(
                DatasetDict({name: twins[name].dataset for name in texts}), dataset_name=kind
            )
            assert isinstance(twin, DatasetDict)  # what it returns for a DatasetDict
            for name in texts:
                self._text_of[id(twin[name])] = texts[name]
            return twin
        twin_dataset = twins[None].dataset
        self._text_of[id(twin_dataset)] = texts
        return twin_dataset

    @contextlib.contextmanager
    def _reading(self, attribute: str, twin: Dataset | DatasetDict) -> Iterator[None]:
        original = getattr(self, attribute)
        setattr(self, attribute, twin)
        try:
            yield
        finally:
            setattr(self, attribute, original)

    def get_train_dataloader(self) -> DataLoader:
        if self._train_loader_data is None:
            return super().get_train_dataloader()
        with self._reading("train_dataset", self._train_loader_data):
            return super().get_train_dataloader()

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        # An explicit dataset has texts: the collator tokenizes it the plain way.
        if self._eval_loader_data is None or not (
            eval_dataset is None or isinstance(eval_dataset, str)
        ):
            return super().get_eval_dataloader(eval_dataset)
        with self._reading("eval_dataset", self._eval_loader_data):
            return super().get_eval_dataloader(eval_dataset)

    def get_batch_sampler(
        self,
        dataset: Dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> BatchSampler | None:
        """The configured sampler, drawn over the texts (as plain)."""
        texts = self._text_of.get(id(dataset), dataset)
        arguments: dict[str, Any] = {
            "batch_size": batch_size,
            "drop_last": drop_last,
            "valid_label_columns": valid_label_columns,
            "generator": generator,
            "seed": seed,
        }
        sampler = super().get_batch_sampler(texts, **arguments)
        if self._hashed_duplicates and type(sampler) is NoDuplicatesBatchSampler:
            sampler = _hashed(sampler, texts, **arguments)
        return sampler


HASH_IN_PROCESS_ROWS = 1_000_000
"""Below this many rows, hashing in this process beats starting worker processes."""


def _hashed(
    sampler: NoDuplicatesBatchSampler, texts: Dataset, **arguments: Any
) -> NoDuplicatesBatchSampler:
    """The same sampler with `precompute_hashes`: sentence-transformers' own variant
    (`no_duplicates_hashed`) that compares a 64-bit hash of each text instead of the text,
    computed once with `datasets.map` rather than read row by row for every batch."""
    if sampler.precompute_hashes:
        return sampler
    try:
        import xxhash  # noqa: F401  (needed by the hashed variant)
    except ImportError:
        return sampler
    return NoDuplicatesBatchSampler(
        texts,
        precompute_hashes=True,
        precompute_num_proc=1 if len(texts) < HASH_IN_PROCESS_ROWS else None,
        **arguments,
    )
