"""The primary metric per Matryoshka dimension: the first evaluator scores both models
again with their embeddings truncated to each dimension the run trained
(sentence-transformers' `truncate_embeddings`), so a user sees what a smaller index costs.

Each model encodes the evaluator's texts once, at its full dimension; every smaller
dimension is scored from those embeddings, cut the way the library cuts them. The
library truncates inside `SentenceTransformer._inference` (`embeddings[..., :dim]`, then
L2-normalizes only when the caller asked for `normalize_embeddings`; a model's own
`Normalize` module ran before the cut, so truncated embeddings are not re-normalized):
`shared_encoding` serves that method's calls from one full-dimension encoding and applies
the same two steps, so the numbers are the library's own (tests compare them with
`truncate_dim` re-encoding). Where the library's internals differ (no `_inference`), or a
call asks for something else than sentence embeddings, it encodes as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from trainer.evaluation.evaluators import primary_metric, run_evaluators
from trainer.results import DimensionScore, Evaluation

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator

INFERENCE_METHOD = "_inference"
"""The method of `SentenceTransformer` that embeds a batch list and applies `truncate_dim`
and `normalize_embeddings` (sentence-transformers 6); every encode call goes through it."""
_UNKEYED = frozenset({"show_progress_bar"})
"""Arguments that do not change the embeddings. The batch size does (padding), and is in
the key: an evaluator calls with the same one at every dimension."""


def _key(inputs: Any, arguments: dict[str, Any]) -> str:
    return repr((inputs, sorted((name, repr(value)) for name, value in arguments.items())))


@contextlib.contextmanager
def shared_encoding(model: SentenceTransformer) -> Iterator[dict[str, Any]]:
    """Inside the block, `model` embeds each distinct call (texts, prompt, task, batch
    size, device) once at full dimension; a repeated call (at any `truncate_dim`) is cut
    from that embedding as the library would cut a fresh one. Yields the cache (its size
    says how many distinct calls encoded)."""
    cache: dict[str, Any] = {}
    original = getattr(model, INFERENCE_METHOD, None)
    if original is None:  # another library version: encode as before
        yield cache
        return
    import torch
    from sentence_transformers.util import truncate_embeddings

    def inference(
        inputs: Any,
        *,
        output_value: str | None = "sentence_embedding",
        truncate_dim: int | None = None,
        normalize_embeddings: bool = False,
        **arguments: Any,
    ) -> Any:
        if output_value != "sentence_embedding":
            return original(
                inputs,
                output_value=output_value,
                truncate_dim=truncate_dim,
                normalize_embeddings=normalize_embeddings,
                **arguments,
            )
        key = _key(inputs, {k: v for k, v in arguments.items() if k not in _UNKEYED})
        if key not in cache:
            cache[key] = original(
                inputs,
                output_value=output_value,
                truncate_dim=None,
                normalize_embeddings=False,
                **arguments,
            )
        with torch.inference_mode():  # as the library's method runs
            embeddings = cache[key]
            if truncate_dim is not None:
                embeddings = truncate_embeddings(embeddings, truncate_dim)
            if normalize_embeddings and embeddings.ndim == 2:
                embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
        return embeddings

    setattr(model, INFERENCE_METHOD, inference)
    try:
        yield cache
    finally:
        delattr(model, INFERENCE_METHOD)


def score_by_dimension(
    base: SentenceTransformer,
    finetuned: SentenceTransformer,
    evaluator: BaseEvaluator,
    dimensions: list[int],
    evaluation: Evaluation,
    *,
    log: Callable[[str], None] | None = None,
) -> list[DimensionScore]:
    """The primary metric of `evaluator` for both models at each of `dimensions` (largest
    first). A dimension equal to a model's full embedding size reuses `evaluation`'s score
    for that model; the others are scored from one full-dimension encoding per model
    (`shared_encoding`)."""
    primary = primary_metric(evaluator)
    ordered = sorted(dimensions, reverse=True)
    values: dict[str, dict[int, float | None]] = {}
    for key, model, label, full in (
        ("base", base, "the base model", evaluation.base),
        ("finetuned", finetuned, "the fine-tuned model", evaluation.finetuned),
    ):
        values[key] = {}
        with shared_encoding(model) as encoded:
            for dimension in ordered:
                if dimension >= (model.get_embedding_dimension() or 0) and primary in full:
                    values[key][dimension] = full[primary]
                    continue
                what = f"{label} at {dimension} dims"
                if encoded:  # its progress line counts no texts: say why
                    what += " (cut from the embeddings encoded above)"
                with model.truncate_embeddings(dimension):
                    metrics = run_evaluators(model, [evaluator], label=what, log=log)
                values[key][dimension] = metrics.get(primary)
    scores = []
    for dimension in ordered:
        tuned = values["finetuned"][dimension]
        if tuned is None:
            continue
        scores.append(
            DimensionScore(dimension=dimension, base=values["base"][dimension], finetuned=tuned)
        )
    return scores
