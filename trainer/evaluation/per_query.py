"""Per-query retrieval scores: what a paired bootstrap needs and the library averages away.

sentence-transformers' `InformationRetrievalEvaluator` ranks the corpus per query (in
chunks, keeping only each query's top hits) and then averages each metric over the
queries. `PerQueryRetrievalEvaluator` keeps the values before that average: the same
formulas applied to the same ranked hits, so the mean of its per-query list is exactly
the metric the library reports (tests/test_per_query.py checks every key). It holds
one float per query and metric of the last model scored, nothing of the corpus.
"""

from __future__ import annotations

from typing import Any

from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator


class PerQueryRetrievalEvaluator(InformationRetrievalEvaluator):
    """`InformationRetrievalEvaluator` that also keeps, after each call, the per-query
    value of every metric it reports (`per_query`, keyed like its metrics)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_query: dict[str, list[float]] = {}
        self._ranked: list[dict[str, list[float]]] = []

    def compute_all_metrics(self, *args: Any, **kwargs: Any) -> Any:
        # The parent calls `compute_metrics` once per score function, in the order of
        # `self.score_functions`, on that function's ranked hits: collect them in that order.
        self._ranked = []
        scores = super().compute_all_metrics(*args, **kwargs)
        per_query: dict[str, list[float]] = {}
        for function, values in zip(self.score_functions or {}, self._ranked, strict=True):
            for metric, listed in values.items():
                key = f"{function}_{metric}"
                per_query[f"{self.name}_{key}" if self.name else key] = listed
        self.per_query = per_query
        return scores

    def compute_metrics(self, queries_result_list: list[object]) -> Any:
        self._ranked.append(self._per_query_values(queries_result_list))
        return super().compute_metrics(queries_result_list)

    def _per_query_values(self, queries_result_list: list[Any]) -> dict[str, list[float]]:
        """Each metric at each cut-off, one value per query, as the parent computes them."""
        values: dict[str, list[float]] = {}

        def add(metric: str, k: int, value: float) -> None:
            values.setdefault(f"{metric}@{k}", []).append(float(value))

        for query_itr, hits in enumerate(queries_result_list):
            relevant = self.relevant_docs[self.queries_ids[query_itr]]
            ranked = sorted(hits, key=lambda hit: (-hit["score"], hit["corpus_id"]))
            flags = [1 if hit["corpus_id"] in relevant else 0 for hit in ranked]
            for k in self.accuracy_at_k:
                add("accuracy", k, 1.0 if any(flags[:k]) else 0.0)
            for k in self.precision_recall_at_k:
                add("precision", k, sum(flags[:k]) / k)
                add("recall", k, sum(flags[:k]) / len(relevant))
            for k in self.mrr_at_k:
                first = next((rank for rank, flag in enumerate(flags[:k]) if flag), None)
                add("mrr", k, 0.0 if first is None else 1.0 / (first + 1))
            for k in self.ndcg_at_k:
                ideal = self.compute_dcg_at_k([1] * len(relevant), k)
                add("ndcg", k, self.compute_dcg_at_k(flags[:k], k) / ideal)
            for k in self.map_at_k:
                found, total = 0, 0.0
                for rank, flag in enumerate(flags[:k]):
                    if flag:
                        found += 1
                        total += found / (rank + 1)
                add("map", k, total / min(k, len(relevant)))
        return values
