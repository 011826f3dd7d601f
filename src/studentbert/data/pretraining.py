"""BERT's pretraining data: sentence pairs for next-sentence prediction, masks for the masked LM.

:func:`build_pretraining_examples` follows ``create_pretraining_data.py`` of Devlin et al. (2019): it packs
the sentences of a document into chunks of about ``max_length`` tokens, cuts a chunk at a random sentence
boundary into segments A and B, and half of the time replaces B by text from another document. The
masking is *not* done there, as in BERT, but at batching time by :class:`MLMCollator` ("dynamic masking",
Liu et al. 2019), so that every epoch masks different tokens.

Shapes: ``B`` batch, ``L`` padded length.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .tokenizer import check_tokenizer

IS_NEXT, NOT_NEXT = 0, 1
"""``next_sentence_label`` values, as in ``transformers.BertForPreTraining``: 0 = B follows A, 1 = B is random."""

MIN_PAIR_LENGTH = 5
"""``[CLS] A [SEP] B [SEP]`` with one token in each segment."""


def _check_documents(documents) -> None:
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise TypeError(
            f"documents must be a list of documents, each a list of sentences (strings); got "
            f"{type(documents).__name__}. Use generate_corpus(...) or load_documents(...)."
        )
    if len(documents) == 0:
        raise ValueError(
            "documents is empty: pass a list of documents, each a list of sentences, e.g. generate_corpus(1000) "
            "or load_documents(path)."
        )
    for i, document in enumerate(documents):
        if isinstance(document, str):
            raise TypeError(
                f"documents[{i}] is a string, but each document must be a list of sentences. Wrap a one-sentence "
                "document as [text], or cut a paragraph with studentbert.data.split_sentences(text)."
            )


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer, batch_size: int = 1000) -> list[list[list[int]]]:
    """Token ids of every sentence, without special tokens: ``result[d][s]`` is a list of ids.

    Runs the tokenizer in batches through ``datasets.Dataset.map(batched=True)``. Sentences that give no
    token (empty strings) are dropped, and so are documents left empty.
    """
    import datasets

    _check_documents(documents)
    doc_ids = [d for d, document in enumerate(documents) for _ in document]
    sentences = [s for document in documents for s in document]
    if not sentences:
        return []
    table = datasets.Dataset.from_dict({"text": sentences})
    table = table.map(
        lambda batch: {"input_ids": tokenizer(batch["text"], add_special_tokens=False)["input_ids"]},
        batched=True, batch_size=batch_size, remove_columns=["text"], desc="Tokenizing sentences",
    )
    out: list[list[list[int]]] = [[] for _ in documents]
    for d, ids in zip(doc_ids, table["input_ids"], strict=True):
        if ids:
            out[d].append(ids)
    return [doc for doc in out if doc]


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """BERT's ``truncate_seq_pair``: drop one token at a time from the longer segment, from its front or its
    back at random, until ``len(a) + len(b) <= max_tokens``."""
    a_front = a_back = b_front = b_back = 0
    la, lb = len(a), len(b)
    while la + lb > max_tokens:
        front = rng.random() < 0.5
        if la > lb:
            la -= 1
            a_front, a_back = (a_front + 1, a_back) if front else (a_front, a_back + 1)
        else:
            lb -= 1
            b_front, b_back = (b_front + 1, b_back) if front else (b_front, b_back + 1)
    return a[a_front:len(a) - a_back], b[b_front:len(b) - b_back]


def _pairs_from_document(
    d: int, documents: list[list[list[int]]], max_tokens: int, short_seq_prob: float, rng: random.Random
) -> list[tuple[list[int], list[int], int]]:
    """``create_instances_from_document`` of BERT, for document ``d``: ``(a, b, label)`` triples."""
    document = documents[d]
    n = len(document)
    # Usually fill the whole length; sometimes (short_seq_prob) aim shorter, so that the model also sees
    # the short sequences of fine-tuning.
    target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
    pairs = []
    chunk: list[list[int]] = []
    length = 0
    i = 0
    while i < n:
        chunk.append(document[i])
        length += len(document[i])
        remaining = n - 1 - i
        # Unlike BERT, a chunk holds at least two sentences whenever the document has two. An IsNext pair
        # needs two sentences, and BERT makes every one-sentence chunk a NotNext pair, which skews its labels
        # toward NotNext. Here a chunk does not stop one sentence before the end of the document, and a lone
        # last sentence (put back by a NotNext pair) borrows the sentence before it, so that the coin alone
        # decides the label (except in one-sentence documents).
        if i == n - 1 or (length >= target and len(chunk) >= 2 and remaining != 1):
            if len(chunk) == 1 and i > 0:
                chunk.insert(0, document[i - 1])
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            a = [t for sentence in chunk[:a_end] for t in sentence]
            if len(chunk) == 1 or rng.random() < 0.5:
                label = NOT_NEXT
                b_target = target - len(a)
                other = rng.randrange(len(documents) - 1)
                other += other >= d  # any document but this one
                random_document = documents[other]
                b = []
                for sentence in random_document[rng.randrange(len(random_document)):]:
                    b.extend(sentence)
                    if len(b) >= b_target:
                        break
                # As BERT does, put the unused sentences of the chunk back: they start the next chunk.
                i -= len(chunk) - a_end
            else:
                label = IS_NEXT
                b = [t for sentence in chunk[a_end:] for t in sentence]
            a, b = _truncate_pair(a, b, max_tokens, rng)
            pairs.append((a, b, label))
            chunk, length = [], 0
        i += 1
    return pairs


def build_pretraining_examples(
    documents: Sequence[Sequence[str]],
    tokenizer,
    max_length: int = 128,
    seed: int = 0,
    short_seq_prob: float = 0.1,
    dupe_factor: int = 1,
):
    """Sentence-pair examples for BERT pretraining (next-sentence prediction; masking comes later).

    For every document: pack its sentences into chunks of about ``max_length - 3`` tokens; cut each chunk at
    a random sentence boundary into segment A (the first sentences) and B (the rest). With probability 1/2
    keep B (label 0, IsNext), otherwise replace B by consecutive sentences from a random *other* document
    (label 1, NotNext) and put the chunk's unused sentences back for the next chunk, as BERT does. Trim the
    pair to ``max_length - 3`` tokens by removing tokens from the longer segment, at a random end. The
    examples are shuffled.

    Args:
        documents: ``documents[d][s]`` is sentence ``s`` of document ``d`` (:func:`generate_corpus`,
            :func:`load_documents`).
        tokenizer: a BERT tokenizer (:func:`train_wordpiece`, :func:`load_tokenizer`).
        max_length: the length of a full example, ``[CLS] A [SEP] B [SEP]`` included.
        seed: seed of the random choices (boundaries, coin flips, random documents, truncation).
        short_seq_prob: probability that a document aims at a random shorter length (BERT: 0.1).
        dupe_factor: go over the corpus this many times, with different random choices (BERT: 10).

    Returns:
        A ``datasets.Dataset`` with columns ``input_ids`` (``[CLS] A [SEP] B [SEP]``), ``token_type_ids``
        (0 on ``[CLS] A [SEP]``, 1 on ``B [SEP]``) and ``next_sentence_label`` (0 IsNext, 1 NotNext).
    """
    import datasets

    check_tokenizer(tokenizer)
    if not isinstance(max_length, int) or max_length < MIN_PAIR_LENGTH:
        raise ValueError(
            f"max_length={max_length!r} is too short for a sentence pair: [CLS] A [SEP] B [SEP] needs 3 special "
            f"tokens and at least one token per segment, so max_length >= {MIN_PAIR_LENGTH}. BERT used 128 "
            "and 512."
        )
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"short_seq_prob must be a probability in [0, 1], got {short_seq_prob!r}.")
    if not isinstance(dupe_factor, int) or dupe_factor < 1:
        raise ValueError(f"dupe_factor must be a positive integer, got {dupe_factor!r}.")
    tokenized = tokenize_documents(documents, tokenizer)
    if len(tokenized) < 2:
        raise ValueError(
            f"The corpus has {len(tokenized)} non-empty document(s), but next-sentence prediction needs at least "
            "2: a NotNext pair takes its second segment from another document. Pass more documents (a "
            "blank line separates documents in a .txt corpus)."
        )
    rng = random.Random(seed)
    max_tokens = max_length - 3
    pairs = []
    for _ in range(dupe_factor):
        for d in range(len(tokenized)):
            pairs.extend(_pairs_from_document(d, tokenized, max_tokens, short_seq_prob, rng))
    rng.shuffle(pairs)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    return datasets.Dataset.from_dict({
        "input_ids": [[cls, *a, sep, *b, sep] for a, b, _ in pairs],
        "token_type_ids": [[0] * (len(a) + 2) + [1] * (len(b) + 1) for a, b, _ in pairs],
        "next_sentence_label": [label for _, _, label in pairs],
    })


def split_pair(input_ids: Sequence[int], token_type_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Segments A and B of one example, without ``[CLS]`` and the two ``[SEP]``."""
    ids, types = list(input_ids), list(token_type_ids)
    first_b = types.index(1) if 1 in types else len(ids)
    return ids[1:first_b - 1], ids[first_b:-1]


# --------------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------------


@dataclass
class MLMCollator:
    """Pad a list of examples into a batch and mask it for the masked-LM task (dynamic masking).

    Each non-special, non-padding token is selected with probability ``mlm_probability`` (BERT: 15%). A
    selected token is replaced by ``[MASK]`` with probability ``mask_replace_prob`` (80%), by a random
    non-special token with probability ``random_replace_prob`` (10%; it may by chance be the token itself),
    and left as it is otherwise (10%). The model must predict the original token at every selected position,
    whatever it was replaced by; ``labels`` holds it there and -100 (ignored by ``cross_entropy``) elsewhere.
    ``[CLS]``, ``[SEP]``, ``[PAD]`` and ``[UNK]`` are never selected.

    Args:
        tokenizer: a BERT tokenizer (ids of ``[PAD]``, ``[MASK]`` and the special tokens; vocabulary size).
        mlm_probability, mask_replace_prob, random_replace_prob: the rates above.
        pad_to_multiple_of: pad the length up to a multiple of this (8 suits tensor cores).
        seed: seed of a private ``torch.Generator``: the same batches give the same masks. None: use
            ``generator``, or torch's global generator. With a ``DataLoader`` of several workers each worker
            gets a copy of the generator; pass ``seed=None`` there, or ``num_workers=0``.
        generator: a ``torch.Generator`` to draw from (used when ``seed`` is None).
        return_token_type_ids: False for DistilBERT, which has no segments.

    Calling it on ``features`` (a list of dicts with ``input_ids``, optionally ``token_type_ids`` and
    ``next_sentence_label``) returns ``input_ids``, ``attention_mask``, ``token_type_ids`` (all ``(B, L)``),
    ``labels`` ``(B, L)`` and, if the features have it, ``next_sentence_label`` ``(B,)``.
    """

    tokenizer: object
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    pad_to_multiple_of: int | None = None
    seed: int | None = None
    generator: torch.Generator | None = None
    return_token_type_ids: bool = True
    special_ids: torch.Tensor = field(init=False, repr=False)
    random_ids: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_tokenizer(self.tokenizer)
        if not 0.0 < self.mlm_probability <= 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1], got {self.mlm_probability!r} (BERT: 0.15).")
        for name in ("mask_replace_prob", "random_replace_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}.")
        if self.mask_replace_prob + self.random_replace_prob > 1.0 + 1e-9:
            raise ValueError(
                f"mask_replace_prob + random_replace_prob = {self.mask_replace_prob + self.random_replace_prob} "
                "exceeds 1: they are shares of the selected tokens, and the rest is left unchanged "
                "(BERT: 0.8 + 0.1, leaving 0.1)."
            )
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be a positive integer or None, got {self.pad_to_multiple_of!r}.")
        if self.seed is not None:
            self.generator = torch.Generator().manual_seed(self.seed)
        self.special_ids = torch.tensor(sorted(set(self.tokenizer.all_special_ids)), dtype=torch.long)
        is_special = torch.zeros(len(self.tokenizer), dtype=torch.bool)
        is_special[self.special_ids] = True
        self.random_ids = torch.nonzero(~is_special).flatten()

    def pad(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        """Pad ``input_ids`` (with ``[PAD]``) and ``token_type_ids`` (with 0); build ``attention_mask``."""
        if not features:
            raise ValueError("MLMCollator got an empty list of features; a batch needs at least one example.")
        lengths = [len(f["input_ids"]) for f in features]
        L = max(lengths)
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        B = len(features)
        input_ids = torch.full((B, L), self.tokenizer.pad_token_id, dtype=torch.long)
        token_type_ids = torch.zeros((B, L), dtype=torch.long)
        attention_mask = torch.zeros((B, L), dtype=torch.long)
        for r, (f, n) in enumerate(zip(features, lengths, strict=True)):
            input_ids[r, :n] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            attention_mask[r, :n] = 1
            if "token_type_ids" in f and f["token_type_ids"] is not None:
                token_type_ids[r, :n] = torch.as_tensor(f["token_type_ids"], dtype=torch.long)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.return_token_type_ids:
            batch["token_type_ids"] = token_type_ids
        if "next_sentence_label" in features[0]:
            batch["next_sentence_label"] = torch.tensor([int(f["next_sentence_label"]) for f in features])
        return batch

    def mask_tokens(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, L)`` ids -> (masked ids, labels), both ``(B, L)``; ``input_ids`` is not modified."""
        g = self.generator
        labels = input_ids.clone()
        special = torch.isin(input_ids, self.special_ids)  # [CLS], [SEP], [PAD], [UNK], [MASK]
        probability = torch.full(input_ids.shape, self.mlm_probability)
        selected = torch.bernoulli(probability, generator=g).bool() & ~special
        labels[~selected] = -100
        u = torch.rand(input_ids.shape, generator=g)
        to_mask = selected & (u < self.mask_replace_prob)
        to_random = selected & (u >= self.mask_replace_prob) & (u < self.mask_replace_prob + self.random_replace_prob)
        masked = input_ids.clone()
        masked[to_mask] = self.tokenizer.mask_token_id
        picks = torch.randint(len(self.random_ids), (int(to_random.sum()),), generator=g)
        masked[to_random] = self.random_ids[picks]
        return masked, labels

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        batch = self.pad(features)
        batch["input_ids"], batch["labels"] = self.mask_tokens(batch["input_ids"])
        return batch
