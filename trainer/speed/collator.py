"""A data collator that pads pre-tokenized rows into the batches sentence-transformers builds.

The sentence-transformers collator turns each batch of texts into `<column>_input_ids`,
`<column>_attention_mask`, ... by calling the tokenizer with padding to the longest row.
Rows from `trainer.speed.tokenize` already hold those token ids, unpadded; this collator only
pads them, so it emits the same keys, in the same order, with the same values and dtypes
(`trainer.speed.levers` checks that on real rows before training). Rows that carry texts
instead (an evaluation dataset passed to `trainer.evaluate(...)` directly) go through the
sentence-transformers collator unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import torch
from sentence_transformers.sentence_transformer.data_collator import (
    SentenceTransformerDataCollator,
)

from trainer.speed.tokenize import ColumnEncoding


@dataclass
class PreTokenizedCollator(SentenceTransformerDataCollator):
    """Pads `<column>_<key>` token lists per batch; falls back to tokenizing texts.

    `encodings` maps a dataset name (None for a single dataset) to its text columns in
    loss order. `pad_to_multiple_of` rounds the padded width up (length buckets, so a
    compiled model sees few distinct shapes); None pads to the longest row exactly as
    sentence-transformers does.
    """

    encodings: dict[str | None, tuple[ColumnEncoding, ...]] = field(default_factory=dict)
    pad_values: dict[str, int] = field(default_factory=dict)
    padding_side: str = "right"
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        first = features[0]
        name = first.get("dataset_name")
        encodings = self.encodings.get(name)
        if not encodings or encodings[0].stored("input_ids") not in first:
            return super().__call__(features)

        batch: dict[str, Any] = {}
        if "dataset_name" in first:
            batch["dataset_name"] = name
        for label_column in self.valid_label_columns:
            if label_column in first:
                labels = [row[label_column] for row in features]
                batch["label"] = (
                    torch.stack(labels)
                    if isinstance(labels[0], torch.Tensor)
                    else torch.tensor(labels)
                )
                break
        for encoding in encodings:
            batch.update(self._pad_column(features, encoding))
        return batch

    def _pad_column(
        self, features: list[dict[str, Any]], encoding: ColumnEncoding
    ) -> dict[str, Any]:
        ids = [row[encoding.stored("input_ids")] for row in features]
        lengths = torch.tensor([len(row_ids) for row_ids in ids])
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        positions = torch.arange(width)
        if self.padding_side == "left":
            real = positions >= (width - lengths)[:, None]
        else:
            real = positions < lengths[:, None]

        columns: dict[str, Any] = {}
        for key in encoding.keys:
            pad = self.pad_values[key]
            if key != "input_ids" and encoding.stored(key) not in features[0]:
                value = torch.where(real, encoding.constants[key], pad)
            else:
                stored = (
                    ids if key == "input_ids" else [row[encoding.stored(key)] for row in features]
                )
                value = torch.full((len(features), width), pad, dtype=torch.long)
                # Row-major boolean assignment fills each row's real positions in order.
                value[real] = torch.tensor(list(chain.from_iterable(stored)), dtype=torch.long)
            columns[f"{encoding.column}_{key}"] = value
        for key, extra in encoding.extras.items():
            columns[f"{encoding.column}_{key}"] = extra
        return columns


def pad_values_of(tokenizer: Any) -> dict[str, int]:
    """What a pad position holds per key, as `tokenizer.pad` writes it."""
    return {
        "input_ids": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        "attention_mask": 0,
        "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0),
        "special_tokens_mask": 1,
    }
