"""Hard-negative mining: (anchor, positive) rows become (anchor, positive, negative_1..n) rows.

In-batch negatives are mostly easy: random documents rarely resemble the anchor. Mining
asks the base model for the documents it ranks closest to each anchor and trains on
those instead. The closest ones are often unlabelled *positives* (false negatives), so
candidates that score within a margin of the labelled positive are dropped first: the
NV-Retriever recipe (`relative_margin: 0.05`), as sentence-transformers implements it in
`sentence_transformers.util.mine_hard_negatives`, which does the work here.

Mining reads the training rows (and an optional extra corpus) only: the run-level
function is never handed held-out rows, and the config rejects a corpus that is a
held-out file. Similarity search is exact (torch) unless faiss is importable, in query
chunks sized so a chunk's score matrix stays under `max_similarity_mib`.
"""

from __future__ import annotations

import importlib.util
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from datasets import Dataset, DatasetDict

from trainer.config import DatasetConfig, HardNegativesConfig, ModelConfig, RunConfig
from trainer.data.loading import load_documents, validate_for_loss
from trainer.logs import encoding_progress
from trainer.models import load_model as load_base_model
from trainer.problems import DataValidationError
from trainer.results import MiningReport, MiningReports

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

_MAX_QUERY_CHUNK = 16384
"""sentence-transformers' own default query chunk for the similarity search."""


def _margin_label(config: HardNegativesConfig) -> str:
    if config.absolute_margin is not None:
        return f"absolute_margin {config.absolute_margin}"
    return f"relative_margin {config.relative_margin}"


def _query_chunk(n_documents: int, max_similarity_mib: int) -> int:
    """Queries per similarity chunk so that one (chunk x documents) float32 matrix fits."""
    budget = max_similarity_mib * 2**20 // (4 * max(n_documents, 1))
    return int(max(1, min(_MAX_QUERY_CHUNK, budget)))


def _use_faiss(config: HardNegativesConfig) -> bool:
    if config.use_faiss == "auto":
        return importlib.util.find_spec("faiss") is not None
    return bool(config.use_faiss)


def _column_prompts(prompt: str | dict[str, str] | None, columns: list[str]) -> list[str | None]:
    """The training prompt of each column, so mining encodes texts as training will."""
    if prompt is None or isinstance(prompt, str):
        return [prompt for _ in columns]
    return [prompt.get(column) for column in columns]


def _load_cached(cache: Path, kind: str) -> np.ndarray:
    files = sorted(cache.glob(f"{kind}_embeddings_*.npy"))
    if len(files) != 1:
        raise RuntimeError(
            f"expected one {kind} embedding file from mine_hard_negatives in {cache}, "
            f"found {len(files)}; the sentence-transformers cache layout changed"
        )
    return np.load(files[0])


def count_margin_filtered(
    model: SentenceTransformer,
    query_embeddings: np.ndarray,
    document_embeddings: np.ndarray,
    positives: list[list[int]],
    config: HardNegativesConfig,
    *,
    query_chunk: int,
) -> tuple[int, int]:
    """(candidates considered, candidates above the margin threshold), per the ST rule.

    For each query the candidates are its `range_max + max_positives` nearest documents
    minus its own positives; a candidate is a probable false negative when its score
    exceeds the threshold set by the query's weakest positive (`pos - |pos| * relative`
    or `pos - absolute`). Computed in query chunks: never a full queries x documents matrix.
    """
    import torch

    queries = torch.as_tensor(query_embeddings)
    documents = torch.as_tensor(document_embeddings)
    max_positives = max(len(p) for p in positives)
    padded = torch.full((len(positives), max_positives), -1, dtype=torch.long)
    for row, indices in enumerate(positives):
        padded[row, : len(indices)] = torch.tensor(indices, dtype=torch.long)
    weakest = _weakest_positive_scores(model, queries, documents, positives)
    if config.absolute_margin is not None:
        thresholds = weakest - config.absolute_margin
    else:
        thresholds = weakest - weakest.abs() * float(config.relative_margin or 0.0)
    k = min(config.range_max + max_positives, len(documents))
    considered = filtered = 0
    for start in range(0, len(queries), query_chunk):
        stop = start + query_chunk
        scores = model.similarity(queries[start:stop], documents)
        top_scores, top_indices = torch.topk(scores, k=k, dim=1)
        is_positive = (top_indices.unsqueeze(-1) == padded[start:stop].unsqueeze(1)).any(-1)
        candidates = ~is_positive
        considered += int(candidates.sum())
        above = top_scores > thresholds[start:stop].unsqueeze(1)
        filtered += int((above & candidates).sum())
    return considered, filtered


def _weakest_positive_scores(
    model: SentenceTransformer,
    queries: torch.Tensor,
    documents: torch.Tensor,
    positives: list[list[int]],
) -> torch.Tensor:
    """Each query's lowest score against its labelled positives (ST's margin reference)."""
    import torch

    query_index = torch.tensor([q for q, docs in enumerate(positives) for _ in docs])
    document_index = torch.tensor([d for docs in positives for d in docs])
    pair_scores = model.similarity_pairwise(queries[query_index], documents[document_index])
    weakest = torch.full((len(positives),), float("inf"), dtype=pair_scores.dtype)
    return weakest.scatter_reduce(0, query_index, pair_scores, reduce="amin")


def mine_dataset(
    model: SentenceTransformer,
    train: Dataset,
    config: HardNegativesConfig,
    *,
    corpus: list[str] | None = None,
    name: str = "dataset",
    model_name: str | None = None,
    prompt: str | dict[str, str] | None = None,
    seed: int = 42,
) -> tuple[Dataset, MiningReport]:
    """Mine `config.num_negatives` hard negatives per (anchor, positive) row of `train`.

    Candidates are the training positives plus `corpus`. Returns rows with columns
    (anchor, positive, negative_1, ..., negative_n) under the input's column names, in
    that order (losses read texts by position), and the report. Rows for which not
    enough candidates survive the margin are dropped (counted in the report).
    `sampling_strategy: random` draws from Python's `random`, seeded with `seed`.
    """
    from sentence_transformers.util import mine_hard_negatives

    what = f"dataset {name!r}"
    if len(train.column_names) != 2:
        raise DataValidationError(
            f"{what}: hard-negative mining needs (anchor, positive) rows, "
            f"got columns {train.column_names}"
        )
    if len(train) == 0:
        raise DataValidationError(f"{what}: has no rows to mine")
    anchor, positive = train.column_names
    anchors, positives = list(train[anchor]), list(train[positive])
    # The order sentence-transformers embeds in (deduplicated, first occurrence first).
    queries = list(dict.fromkeys(anchors))
    documents = list(dict.fromkeys((corpus if corpus is not None else positives) + positives))
    query_chunk = _query_chunk(len(documents), config.max_similarity_mib)
    query_prompt, document_prompt = _column_prompts(prompt, [anchor, positive])

    started = time.perf_counter()
    encoding = encoding_progress(
        model, len(queries) + len(documents), f"mining hard negatives for {what}"
    )
    with tempfile.TemporaryDirectory(prefix="mining-") as cache_dir, encoding:
        random.seed(seed)
        mined = mine_hard_negatives(
            dataset=train,
            model=model,
            anchor_column_name=anchor,
            positive_column_name=positive,
            corpus=corpus,
            range_min=config.range_min,
            range_max=config.range_max,
            relative_margin=config.relative_margin,
            absolute_margin=config.absolute_margin,
            num_negatives=config.num_negatives,
            sampling_strategy=config.sampling_strategy,
            query_prompt=query_prompt,
            corpus_prompt=document_prompt,
            output_format="n-tuple",
            batch_size=config.batch_size,
            faiss_batch_size=query_chunk,
            use_faiss=_use_faiss(config),
            verbose=False,
            cache_folder=cache_dir,
        )
        query_embeddings = _load_cached(Path(cache_dir), "query")
        document_embeddings = _load_cached(Path(cache_dir), "corpus")
    if query_embeddings.shape[0] != len(queries) or document_embeddings.shape[0] != len(documents):
        raise RuntimeError(
            "mine_hard_negatives embedded a different number of queries or documents than "
            "expected; the sentence-transformers deduplication changed"
        )
    document_index = {text: index for index, text in enumerate(documents)}
    query_index = {text: index for index, text in enumerate(queries)}
    positive_sets: list[list[int]] = [[] for _ in queries]
    for query, document in zip(anchors, positives, strict=True):
        indices = positive_sets[query_index[query]]
        if document_index[document] not in indices:
            indices.append(document_index[document])
    considered, filtered = count_margin_filtered(
        model,
        query_embeddings,
        document_embeddings,
        positive_sets,
        config,
        query_chunk=query_chunk,
    )
    seconds = time.perf_counter() - started
    report = MiningReport(
        dataset=name,
        model=model_name or str(model.model_card_data.base_model or "base model"),
        rows_in=len(train),
        rows_with_negatives=len(mined),
        rows_dropped=len(train) - len(mined),
        num_negatives=config.num_negatives,
        corpus_documents=len(documents),
        candidates_considered=considered,
        false_negatives_filtered=filtered,
        margin=_margin_label(config),
        seconds=round(seconds, 2),
    )
    return mined, report


ModelLoader = Callable[[ModelConfig], "SentenceTransformer"]


def mine_hard_negatives_for_run(
    config: RunConfig,
    train_datasets: DatasetDict,
    model: SentenceTransformer | None = None,
    *,
    load_model: ModelLoader = load_base_model,
) -> tuple[DatasetDict, MiningReports]:
    """Mine every dataset whose config has `hard_negatives`; pass the others through.

    Only training splits come in, so held-out rows cannot be mined from. `model` is
    the run's base model if already loaded; a dataset's `hard_negatives.model` (or the
    base model, when `model` is None) is loaded with `load_model`, once per model.
    Each mined split is re-validated against its loss before it is returned.
    """
    loaded: dict[ModelConfig, SentenceTransformer] = {}
    if model is not None:
        loaded[config.model] = model

    def mining_model(model_config: ModelConfig) -> SentenceTransformer:
        if model_config not in loaded:
            loaded[model_config] = load_model(model_config)
        return loaded[model_config]

    mined: dict[str, Dataset] = {}
    reports: dict[str, MiningReport] = {}
    for name, train in train_datasets.items():
        dataset_config: DatasetConfig | None = config.datasets.get(name)
        if dataset_config is None or dataset_config.hard_negatives is None:
            mined[name] = train
            continue
        mining = dataset_config.hard_negatives
        model_config = mining.model or config.model
        corpus = None
        if mining.corpus is not None:
            corpus = load_documents(mining.corpus, what=f"datasets.{name}.hard_negatives.corpus")
        mined[name], reports[name] = mine_dataset(
            mining_model(model_config),
            train,
            mining,
            corpus=corpus,
            name=name,
            model_name=model_config.name_or_path,
            prompt=dataset_config.prompt,
            seed=config.seed,
        )
        trained_as = dataset_config.model_copy(update={"hard_negatives": None})
        validate_for_loss(mined[name], trained_as, what=f"dataset {name!r} (mined)")
    return DatasetDict(mined), MiningReports(datasets=reports)
