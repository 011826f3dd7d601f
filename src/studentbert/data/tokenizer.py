"""WordPiece tokenizers: train one on a corpus, load one, check that it can serve BERT pretraining.

A BERT tokenizer is four steps (Devlin et al., 2019; Wu et al., 2016):

1. normalise (``BertNormalizer``: clean control characters, lower-case, strip accents, space out CJK),
2. pre-tokenise into words (``BertPreTokenizer``: split on white space and punctuation),
3. split every word into the longest vocabulary pieces, left to right (``WordPiece``; a piece that does not
   start a word carries the prefix ``##``; a word with no split becomes ``[UNK]``),
4. frame the result: ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``, with token-type (segment) ids 0 for
   ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

Training chooses the vocabulary, bottom-up: start from the characters and repeatedly add the merge of two
adjacent pieces. Byte-pair encoding picks the most *frequent* pair; WordPiece, as usually described, the pair
with the best score ``freq(ab) / (freq(a) freq(b))`` (:func:`wordpiece_pair_scores`), which favours pieces
that are rarely seen apart. :func:`train_wordpiece` merges by frequency (``algorithm="frequency"``), as the
``WordPieceTrainer`` of the ``tokenizers`` library does, but deterministically: that trainer breaks ties
between equally frequent pairs by hash-map order, so two runs on the same text can give different
vocabularies (huggingface/tokenizers issue 1794). ``algorithm="score"`` merges by the WordPiece score, and
``algorithm="tokenizers"`` runs the library's (fast, Rust) trainer, for large corpora. All three encode with
the WordPiece rule of step 3.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""BERT's special tokens, in the order that gives ``[PAD]`` id 0."""

_REQUIRED = {"cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]", "pad_token": "[PAD]"}


class TokenizerError(ValueError):
    """A tokenizer that cannot serve BERT pretraining, or that could not be loaded."""


def _texts(texts: Iterable) -> Iterator[str]:
    """Strings, or documents (lists of sentences), flattened to strings."""
    for t in texts:
        if isinstance(t, str):
            yield t
        else:
            yield from t


def train_wordpiece(
    texts: Iterable[str] | Iterable[list[str]],
    vocab_size: int,
    output_dir: str | os.PathLike | None = None,
    lowercase: bool = True,
    min_frequency: int = 2,
    model_max_length: int = 512,
    algorithm: str = "frequency",
):
    """Train a BERT WordPiece tokenizer on ``texts`` and wrap it as a ``transformers`` tokenizer.

    Args:
        texts: sentences (strings), or documents (lists of sentences) such as :func:`generate_corpus` returns.
        vocab_size: the largest vocabulary to learn, special tokens and single characters included. A small
            corpus may run out of pairs to merge and give fewer.
        output_dir: if given, save the tokenizer there (``AutoTokenizer.from_pretrained(output_dir)`` loads it).
        lowercase: lower-case and strip accents (an "uncased" model, like ``bert-base-uncased``).
        min_frequency: a pair seen fewer times is never merged.
        model_max_length: the longest input the model will accept (BERT: 512 positions).
        algorithm: how pairs are chosen: ``"frequency"`` (most frequent pair, ties broken alphabetically;
            deterministic; pure Python, fine up to a few hundred thousand word types), ``"score"`` (best
            WordPiece score; deterministic; slower) or ``"tokenizers"`` (most frequent pair, by the
            ``tokenizers`` library's trainer: fast on large corpora, but ties may break differently from one
            run to the next).

    Returns:
        A ``transformers.BertTokenizerFast`` with ``[PAD]`` = 0, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``, whose
        pair encoding is ``[CLS] A [SEP] B [SEP]`` with ``token_type_ids`` 0 then 1.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    if not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
        raise TokenizerError(
            f"vocab_size must be an integer larger than the {len(SPECIAL_TOKENS)} special tokens, got "
            f"{vocab_size!r}; BERT uses 30522, the tiny models of this book a few thousand."
        )
    if algorithm not in ("frequency", "score", "tokenizers"):
        raise TokenizerError(f"Unknown algorithm {algorithm!r}; use 'frequency', 'score' or 'tokenizers'.")
    no_text = TokenizerError(
        "train_wordpiece got no text to learn from: pass an iterable of sentences (strings) or of "
        "documents (lists of sentences), e.g. generate_corpus(1000)."
    )
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    if algorithm == "tokenizers":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
        tokenizer.normalizer = normalizer
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
            continuing_subword_prefix="##", show_progress=False,
        )
        tokenizer.train_from_iterator(_texts(texts), trainer)
        if tokenizer.get_vocab_size() <= len(SPECIAL_TOKENS):
            raise no_text
    else:
        counts = count_words(texts, lowercase=lowercase)
        if not counts:
            raise no_text
        pieces = learn_wordpiece_vocabulary(counts, vocab_size - len(SPECIAL_TOKENS), algorithm, min_frequency)
        vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *pieces])}
        tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
        tokenizer.normalizer = normalizer
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    wrapped = BertTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
        cls_token="[CLS]", mask_token="[MASK]", do_lower_case=lowercase, model_max_length=model_max_length,
    )
    if output_dir is not None:
        wrapped.save_pretrained(os.fspath(output_dir))
    return wrapped


def load_tokenizer(name_or_dir: str | os.PathLike):
    """Load a tokenizer with ``transformers.AutoTokenizer`` and :func:`check_tokenizer` it.

    ``name_or_dir`` is a directory written by ``save_pretrained`` (e.g. ``train_wordpiece(...,
    output_dir=...)``) or a hub id such as ``"bert-base-uncased"`` (internet access or a cached copy).
    """
    from transformers import AutoTokenizer

    name = os.fspath(name_or_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise TokenizerError(
            f"Could not load a tokenizer from {name!r} ({type(error).__name__}: {error}). Pass a directory "
            "written by tokenizer.save_pretrained (train_wordpiece(..., output_dir=...) writes one) or a hub "
            "id such as 'bert-base-uncased', which needs internet access or a cached copy."
        ) from error
    check_tokenizer(tokenizer)
    return tokenizer


def check_tokenizer(tokenizer) -> None:
    """Raise :class:`TokenizerError` unless ``tokenizer`` has ``[CLS]``, ``[SEP]``, ``[MASK]`` and ``[PAD]``.

    BERT pretraining needs all four: ``[CLS]`` and ``[SEP]`` frame a sentence pair, ``[MASK]`` hides the
    tokens of the masked-LM task and ``[PAD]`` fills a batch to one length.
    """
    vocab = tokenizer.get_vocab()
    missing = []
    for attribute, usual in _REQUIRED.items():
        token = getattr(tokenizer, attribute, None)
        if token is None or str(token) not in vocab:
            missing.append(f"{attribute} (usually {usual})")
    if missing:
        raise TokenizerError(
            f"The tokenizer ({type(tokenizer).__name__}) has no {', '.join(missing)}. BERT pretraining needs "
            "[CLS] and [SEP] to frame a sentence pair, [MASK] for the masked-LM task and [PAD] to batch. Use a "
            "BERT tokenizer (train_wordpiece(...) or load_tokenizer('bert-base-uncased')), or add the missing "
            "tokens, e.g. tokenizer.add_special_tokens({'mask_token': '[MASK]'}), and resize the model's "
            "embeddings to len(tokenizer)."
        )


# --------------------------------------------------------------------------------------------------
# The WordPiece training criterion, for teaching
# --------------------------------------------------------------------------------------------------


def count_words(texts: Iterable[str] | Iterable[list[str]], lowercase: bool = True) -> Counter:
    """How often each word occurs, after BERT's normalisation and pre-tokenisation (steps 1-2 above)."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter = Counter()
    for text in _texts(texts):
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def wordpiece_pair_scores(
    word_counts: dict[str, int], splits: dict[str, list[str]] | None = None
) -> list[tuple[str, str, int, float]]:
    """Score every pair of adjacent pieces as the original WordPiece trainer does.

    ``score(a, b) = freq(ab) / (freq(a) * freq(b))``: how much merging ``a`` and ``b`` raises the likelihood of
    the corpus under a unigram model of pieces, up to a constant. A pair scores high when its parts are rarely
    seen apart; frequency alone (BPE) would favour pairs of common pieces.

    Args:
        word_counts: word -> count (:func:`count_words`).
        splits: word -> its current pieces; default: single characters, ``##`` before all but the first.

    Returns:
        ``(a, b, freq(ab), score)`` for every adjacent pair, best score first.
    """
    if splits is None:
        splits = {w: [w[0]] + [f"##{c}" for c in w[1:]] for w in word_counts}
    piece_freq: Counter = Counter()
    pair_freq: Counter = Counter()
    for word, count in word_counts.items():
        pieces = splits[word]
        for p in pieces:
            piece_freq[p] += count
        for a, b in zip(pieces, pieces[1:], strict=False):
            pair_freq[a, b] += count
    scored = [(a, b, f, f / (piece_freq[a] * piece_freq[b])) for (a, b), f in pair_freq.items()]
    return sorted(scored, key=lambda x: (-x[3], -x[2], x[0], x[1]))


def _split(word: str) -> list[str]:
    return [word[0]] + [f"##{c}" for c in word[1:]]


def learn_wordpiece_vocabulary(
    word_counts: dict[str, int], size: int, algorithm: str = "frequency", min_frequency: int = 2
) -> list[str]:
    """Learn up to ``size`` WordPiece tokens (no special tokens) from word counts, deterministically.

    Start from the alphabet (every character of the words, alone and with ``##``, in sorted order); then repeatedly merge, in every word, the adjacent pair of pieces chosen by
    ``algorithm`` and add the merged piece, until the vocabulary has ``size`` tokens or no pair occurs
    ``min_frequency`` times. ``"frequency"``: the most frequent pair (byte-pair encoding's rule, which the
    ``tokenizers`` library's ``WordPieceTrainer`` uses). ``"score"``: the pair with the highest
    ``freq(ab) / (freq(a) freq(b))``. Ties go to the alphabetically first pair.

    Returns:
        The tokens: the alphabet first, then the merged pieces in the order they were learned.
    """
    import heapq

    if algorithm not in ("frequency", "score"):
        raise ValueError(f"Unknown algorithm {algorithm!r}; use 'frequency' or 'score'.")
    items = sorted(word_counts.items())
    words = [_split(w) for w, _ in items]
    counts = [c for _, c in items]
    characters = sorted({c for w, _ in items for c in w})
    alphabet = characters + [f"##{c}" for c in characters]  # every character, word-initial or not
    vocab, known = list(alphabet), set(alphabet)
    pair_freq: dict[tuple[str, str], int] = {}
    piece_freq: dict[str, int] = {}
    where: dict[tuple[str, str], set[int]] = {}

    def account(i: int, sign: int) -> set[tuple[str, str]]:
        w, c = words[i], counts[i]
        for p in w:
            piece_freq[p] = piece_freq.get(p, 0) + sign * c
        pairs = set()
        for pair in zip(w, w[1:], strict=False):
            pair_freq[pair] = pair_freq.get(pair, 0) + sign * c
            if sign > 0:
                where.setdefault(pair, set()).add(i)
            pairs.add(pair)
        return pairs

    for i in range(len(words)):
        account(i, +1)
    heap = [(-f, pair) for pair, f in pair_freq.items()]
    heapq.heapify(heap)
    while len(vocab) < size:
        if algorithm == "frequency":
            best = None
            while heap:
                f, pair = heapq.heappop(heap)
                if pair_freq.get(pair, 0) == -f and f < 0:
                    best = pair
                    break
        else:
            candidates = [(pair, f) for pair, f in pair_freq.items() if f >= max(min_frequency, 1)]
            best = min(candidates, key=lambda x: (-x[1] / (piece_freq[x[0][0]] * piece_freq[x[0][1]]), x[0]),
                       default=(None, 0))[0]
        if best is None or pair_freq[best] < min_frequency:
            break
        a, b = best
        merged = a + b[2:]
        changed: set[tuple[str, str]] = set()
        for i in sorted(where.pop(best, ())):
            changed |= account(i, -1)
            w, out, k = words[i], [], 0
            while k < len(w):
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    out.append(merged)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            words[i] = out
            changed |= account(i, +1)
        pair_freq.pop(best, None)
        if algorithm == "frequency":
            for pair in changed:
                if pair_freq.get(pair, 0) > 0:
                    heapq.heappush(heap, (-pair_freq[pair], pair))
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
    return vocab[:size]
