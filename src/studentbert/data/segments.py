"""Single-segment examples, for distillation and plain masked-LM training.

DistilBERT drops next-sentence prediction, so its inputs are not sentence pairs but contiguous runs of
text: the sentences of a document packed into chunks of at most ``max_length - 2`` tokens, each wrapped
as ``[CLS] chunk [SEP]``. A sentence longer than a chunk is cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .pretraining import tokenize_documents
from .tokenizer import check_tokenizer


def pack_segments(token_documents: Iterable[Iterable[list[int]]], tokenizer, max_length: int) -> list[list[int]]:
    """Pack each document's tokenized sentences (lists of ids; empty ones skipped) into ``[CLS] chunk [SEP]``
    examples of at most ``max_length`` tokens; a sentence longer than a chunk is cut."""
    budget, cls, sep = max_length - 2, tokenizer.cls_token_id, tokenizer.sep_token_id
    examples: list[list[int]] = []
    for document in token_documents:
        chunk: list[int] = []
        for sentence in document:
            if not sentence:
                continue
            if chunk and len(chunk) + len(sentence) > budget:
                examples.append([cls, *chunk, sep])
                chunk = []
            chunk.extend(sentence[:budget])
        if chunk:
            examples.append([cls, *chunk, sep])
    return examples


def build_segment_examples(documents: Sequence[Sequence[str]], tokenizer, max_length: int = 128):
    """Pack each document's sentences into ``[CLS] ... [SEP]`` examples of at most ``max_length`` tokens.

    Returns a ``datasets.Dataset`` with one column, ``input_ids`` (lists of ids; no padding: the collator pads).
    """
    import datasets

    check_tokenizer(tokenizer)
    if max_length < 3:
        raise ValueError(f"max_length={max_length} leaves no room for text between [CLS] and [SEP]; use >= 3.")
    examples = pack_segments(tokenize_documents(documents, tokenizer), tokenizer, max_length)
    if not examples:
        raise ValueError("The documents produced no tokens: the corpus is empty after tokenization.")
    return datasets.Dataset.from_dict({"input_ids": examples})
