"""A real SentenceTransformer whose embeddings are set by hand, for exact expected ranks.

One word-level token per text and a `StaticEmbedding` with the given vectors: the
embedding of a text is its word's vector, so cosine similarities (and therefore ranks,
NDCG and MRR, and mining's margin decisions) can be worked out on paper.
"""

from __future__ import annotations

import numpy as np


def static_model(vectors: dict[str, list[float]]) -> object:
    """SentenceTransformer mapping each single-word text in `vectors` to its vector."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    words = sorted(vectors)
    vocab = {"[UNK]": 0, **{word: index + 1 for index, word in enumerate(words)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    dimension = len(next(iter(vectors.values())))
    weights = np.zeros((len(vocab), dimension), dtype=np.float32)
    for word, index in vocab.items():
        if word in vectors:
            weights[index] = vectors[word]
    embedding = StaticEmbedding(tokenizer, embedding_weights=torch.tensor(weights))
    return SentenceTransformer(modules=[embedding], device="cpu")
