"""Tokenize each dataset once, with sentence-transformers' own preprocessing, and cache it.

Plain sentence-transformers tokenizes every batch inside the data collator, in the main
process, in every epoch. Here each text column goes through `model.preprocess` once
(`datasets.map`, batched), with the prompt, truncation and max length the collator would
use, only unpadded; `PreTokenizedCollator` then pads each batch to its longest row, so the
model sees the same token ids as before.

The map writes an Arrow file named by a key over everything that decides the token ids:
the dataset's fingerprint, its text columns and their prompts, the tokenizer, the max
length and the library versions. Later epochs read the same file; a retry in the same
pod, a re-run over the same data (the loaded dataset's fingerprint is stable, also through
ZenML's datasets materializer) and every hyperparameter-search trial find the file and
skip tokenizing. A new tokenizer, max length, prompt or data gives a new key and a new file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
from datasets import Dataset, Features, Sequence, Value

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

UNPADDED: dict[str, dict[str, Any]] = {
    "text": {"padding": False},
    "common": {"return_tensors": None},
}
"""Per-call processing kwargs: the collator's tokenization, minus padding and tensors."""

PADDABLE_KEYS = ("input_ids", "attention_mask", "token_type_ids", "special_tokens_mask")
"""Tokenizer outputs the collator knows how to pad (the value a pad position gets)."""

FORMAT_VERSION = 1
"""Bump when the stored layout changes, so old cache files are not read."""


class TokenizeOnceUnsupported(ValueError):
    """The model or data cannot be pre-tokenized exactly; training falls back to plain."""


@dataclass(frozen=True)
class ColumnEncoding:
    """How one text column was tokenized and how the collator rebuilds its batch features.

    `keys` are the tokenizer's per-token outputs in the order the collator emits them.
    Keys whose every token has one value (BERT's `attention_mask` of 1s, `token_type_ids`
    of 0s for single texts) are not stored: `constants` holds the value and the collator
    fills it in. `extras` are the per-batch values `preprocess` adds (`modality`,
    `prompt_length`), identical for every batch of the column.
    """

    column: str
    prompt: str | None
    keys: tuple[str, ...]
    constants: dict[str, int] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def stored(self, key: str) -> str:
        """The dataset column holding `key` of this text column (`anchor_input_ids`)."""
        return f"{self.column}_{key}"


@dataclass(frozen=True)
class TokenizedDataset:
    """A dataset's token twin: same rows in the same order, token columns instead of texts."""

    dataset: Dataset
    encodings: tuple[ColumnEncoding, ...]
    label_column: str | None
    cache_file: str | None
    reused: bool


def default_cache_dir() -> Path:
    """`<HF_DATASETS_CACHE>/tokenized`: where `datasets` keeps its own cache, so the same
    environment variable (or volume) moves both."""
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "tokenized"


def text_columns(dataset: Dataset, label_columns: list[str]) -> tuple[list[str], str | None]:
    """Split columns as the sentence-transformers collator does: the first label column
    found (in `label_columns` order) is the label, every other column is text."""
    columns = [column for column in dataset.column_names if column != "dataset_name"]
    label = next((name for name in label_columns if name in columns), None)
    return [column for column in columns if column != label], label


def _tokenizer_digest(model: SentenceTransformer) -> str:
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        from datasets.fingerprint import Hasher

        text = Hasher.hash(tokenizer)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(dataset: Dataset, model: SentenceTransformer, prompts: dict[str, str | None]) -> str:
    """A key over everything that decides the token ids of `dataset` (40 hex digits)."""
    import datasets
    import sentence_transformers
    import transformers

    tokenizer = model.tokenizer
    parts = {
        "format": FORMAT_VERSION,
        "dataset": dataset._fingerprint,
        "prompts": sorted((column, prompt or "") for column, prompt in prompts.items()),
        "tokenizer": _tokenizer_digest(model),
        "tokenizer_class": type(tokenizer).__name__,
        "max_length": tokenizer.model_max_length,
        "sides": [tokenizer.padding_side, tokenizer.truncation_side],
        "processing_kwargs": repr(getattr(model[0], "processing_kwargs", None)),
        "versions": [
            sentence_transformers.__version__,
            transformers.__version__,
            datasets.__version__,
        ],
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:40]


def check_supported(model: SentenceTransformer) -> None:
    """Raise `TokenizeOnceUnsupported` unless the model's first module is a text Transformer
    whose batches are padded token matrices (what the pre-tokenized collator rebuilds)."""
    from sentence_transformers.base.modules import Transformer

    first = model[0]
    if not isinstance(first, Transformer) or model.tokenizer is None:
        raise TokenizeOnceUnsupported(
            f"the first module is {type(first).__name__}, not a Transformer with a tokenizer"
        )
    if getattr(first, "can_flatten_inputs", False):
        raise TokenizeOnceUnsupported("the model packs (flattens) inputs for flash attention")
    if getattr(first, "query_expansion", None) is not None:
        raise TokenizeOnceUnsupported("the model expands queries to a fixed width")


def encode_column_sample(
    model: SentenceTransformer, column: str, prompt: str | None, sample: str
) -> ColumnEncoding:
    """Tokenize one text unpadded to learn the column's output keys and per-batch extras."""
    output = model.preprocess([sample], prompt=prompt, processing_kwargs=UNPADDED)
    keys = tuple(key for key, value in output.items() if isinstance(value, list))
    unknown = [key for key in keys if key not in PADDABLE_KEYS]
    if "input_ids" not in keys or unknown:
        raise TokenizeOnceUnsupported(
            f"column {column!r}: tokenizer outputs {list(keys)}; pre-tokenized batches "
            f"support {', '.join(PADDABLE_KEYS)}"
        )
    extras = {key: value for key, value in output.items() if key not in keys}
    return ColumnEncoding(column=column, prompt=prompt, keys=keys, extras=extras)


def _features(dataset: Dataset, label: str | None, encodings: list[ColumnEncoding]) -> Features:
    features: dict[str, Any] = {}
    if label is not None:
        features[label] = dataset.features[label]
    for encoding in encodings:
        for key in encoding.keys:
            dtype = "int32" if key == "input_ids" else "int8"
            features[encoding.stored(key)] = Sequence(Value(dtype))
    return Features(features)


def _encode_batch(
    batch: dict[str, list[Any]],
    *,
    model: SentenceTransformer,
    encodings: list[ColumnEncoding],
) -> dict[str, Any]:
    """One `datasets.map` batch: each text column's token columns, unpadded (lists)."""
    output: dict[str, Any] = {}
    for encoding in encodings:
        tokens = model.preprocess(
            batch[encoding.column], prompt=encoding.prompt, processing_kwargs=UNPADDED
        )
        for key in encoding.keys:
            output[encoding.stored(key)] = tokens[key]
    return output


def _constant_value(dataset: Dataset, column: str) -> int | None:
    """The one value every token of `column` has, or None (an empty column has none)."""
    flat = pc.list_flatten(dataset.data.column(column))
    if len(flat) == 0:
        return None
    bounds = pc.min_max(flat)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return int(low) if low == high else None


def tokenize_once(
    dataset: Dataset,
    model: SentenceTransformer,
    *,
    prompts: dict[str, str | None],
    label_column: str | None,
    cache_dir: Path | None,
    name: str,
) -> TokenizedDataset:
    """Tokenize the text columns of `dataset` (keys of `prompts`, in order) once.

    With `cache_dir`, the result is the Arrow file `<cache_dir>/<name>-<key>.arrow`, read
    back instead of recomputed when it exists; without, it is kept in memory.
    """
    check_supported(model)
    if len(dataset) == 0:
        raise TokenizeOnceUnsupported(f"dataset {name!r} has no rows")
    first_row = dataset[0]
    encodings = [
        encode_column_sample(model, column, prompt, first_row[column])
        for column, prompt in prompts.items()
    ]
    # An explicit fingerprint also spares `datasets` from hashing the model in fn_kwargs.
    key = cache_key(dataset, model, prompts)
    cache_file: str | None = None
    reused = False
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_file = str(cache_dir / f"{name}-{key}.arrow")
        reused = Path(cache_file).is_file()
    tokenized = dataset.map(
        _encode_batch,
        batched=True,
        remove_columns=list(prompts),
        features=_features(dataset, label_column, encodings),
        fn_kwargs={"model": model, "encodings": encodings},
        cache_file_name=cache_file,
        load_from_cache_file=cache_file is not None,
        keep_in_memory=cache_file is None,
        new_fingerprint=key,
        desc=f"Tokenizing {name} once",
    )
    tokenized, encodings = _drop_constant_columns(tokenized, encodings)
    return TokenizedDataset(
        dataset=tokenized,
        encodings=tuple(encodings),
        label_column=label_column,
        cache_file=cache_file,
        reused=reused,
    )


def _drop_constant_columns(
    dataset: Dataset, encodings: list[ColumnEncoding]
) -> tuple[Dataset, list[ColumnEncoding]]:
    """Drop token columns that hold one value everywhere; the encodings remember the value.

    Only the in-memory view drops them (the cache file keeps every column), so the check
    runs again on a reused file: one Arrow min/max per column.
    """
    dropped: list[str] = []
    filled: list[ColumnEncoding] = []
    for encoding in encodings:
        constants: dict[str, int] = {}
        for key in encoding.keys:
            if key == "input_ids":
                continue
            value = _constant_value(dataset, encoding.stored(key))
            if value is not None:
                constants[key] = value
                dropped.append(encoding.stored(key))
        filled.append(replace(encoding, constants=constants))
    return (dataset.remove_columns(dropped) if dropped else dataset), filled
