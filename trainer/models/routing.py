"""Asymmetric models: a sentence-transformers Router with a query and a document route
over copies of the base model's modules (`model.asymmetric`), trained with
`training.router_mapping`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def as_query_document_router(model: SentenceTransformer) -> SentenceTransformer:
    """`model` as a sentence-transformers Router with a query and a document route, each
    an independent copy of its modules (they start equal and train apart)."""
    import copy

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Module, Router

    query = [module for module in model if isinstance(module, Module)]
    if len(query) != len(model):
        raise ValueError("model.asymmetric: the base model has modules a Router cannot hold")
    document = [copy.deepcopy(module) for module in query]
    router = Router.for_query_document(query_modules=query, document_modules=document)
    routed = SentenceTransformer(
        modules=[router],
        device=str(model.device),
        similarity_fn_name=model.similarity_fn_name,
        model_card_data=model.model_card_data,
    )
    routed.max_seq_length = model.max_seq_length
    return routed
