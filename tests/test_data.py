"""The data pipeline: generated corpus, sentiment task, text loading, WordPiece, NSP pairs, MLM masking."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest
import torch

from studentbert.data import (
    IS_NEXT,
    NOT_NEXT,
    TOPIC_NAMES,
    MLMCollator,
    TokenizerError,
    bag_of_words_baseline,
    build_pretraining_examples,
    check_tokenizer,
    count_words,
    generate_corpus,
    generate_corpus_with_topics,
    generate_sentiment,
    load_documents,
    load_tokenizer,
    review_form,
    sentiment_rule,
    split_pair,
    split_sentences,
    tokenize_documents,
    train_wordpiece,
    wordpiece_pair_scores,
)
from studentbert.data import lexicon as C

WORD = re.compile(r"[A-Za-z]+")


@pytest.fixture(scope="module")
def documents():
    return generate_corpus(1000, seed=0)


@pytest.fixture(scope="module")
def tokenizer(documents):
    return train_wordpiece(documents, vocab_size=2048)


@pytest.fixture(scope="module")
def examples(documents, tokenizer):
    return build_pretraining_examples(documents, tokenizer, max_length=64, seed=0)


# --------------------------------------------------------------------------------------------------
# Generated corpus
# --------------------------------------------------------------------------------------------------


def test_corpus_is_deterministic_and_seeded():
    a, b, c = generate_corpus(40, seed=3), generate_corpus(40, seed=3), generate_corpus(40, seed=4)
    assert a == b
    assert a != c
    docs, topics = generate_corpus_with_topics(40, seed=3)
    assert docs == a and len(topics) == 40 and set(topics) <= set(TOPIC_NAMES)


def test_corpus_shape_and_vocabulary(documents):
    assert len(documents) == 1000
    assert all(4 <= len(d) <= 12 for d in documents)
    assert all(isinstance(s, str) and s.endswith(".") for d in documents for s in d)
    types = {w.lower() for d in documents for s in d for w in WORD.findall(s)}
    assert 500 <= len(types) <= 2000, len(types)
    only = generate_corpus(30, topics=["music", "sea"])
    assert only and generate_corpus_with_topics(30, topics=["music", "sea"])[1].count("animals") == 0


def test_corpus_generation_is_fast():
    import time

    start = time.perf_counter()
    docs = generate_corpus(2500, seed=1)
    assert sum(len(d) for d in docs) > 15_000
    print(f"generate_corpus(2500): {time.perf_counter() - start:.2f} s (~0.1 s unloaded; not asserted: a timing "
          f"on a shared machine is a measurement, not a fact)")


def _words(sentence: str) -> list[str]:
    return WORD.findall(sentence.lower())


def test_subject_verb_agreement_across_attractors(documents):
    """"The dogs near the old barn run": the verb agrees with the subject, not with the nearer noun."""
    place_number = {p: n for t in C.TOPICS for pair in t.places for p, n in zip(pair, ("sg", "pl"), strict=True)}
    assert not set(place_number) & set(C.VERB_NUMBER)
    checked = attracted = 0
    for sentence in (s for d in documents for s in d):
        w = _words(sentence)
        for i in range(1, len(w) - 3):
            if w[i - 1] != "the" or w[i] not in C.NOUN_NUMBER:
                continue
            starts_clause = i == 1 or w[i - 2] == "that"
            if starts_clause and w[i + 1] in ("near", "behind", "beside", "by"):
                # the <agent> <prep> the/his/her/their [adjective] <place> <verb>
                k = next(k for k in range(i + 3, i + 6) if w[k] in C.VERB_NUMBER)
                assert C.VERB_NUMBER[w[k]] == C.NOUN_NUMBER[w[i]], sentence
                checked += 1
                attracted += place_number[w[k - 1]] != C.NOUN_NUMBER[w[i]]
            elif i == 1 and w[i + 1] == "that":  # "The cakes that Anna baked last week were warm."
                verb = next(x for x in w[i + 2:] if x in ("was", "were"))
                assert C.VERB_NUMBER[verb] == C.NOUN_NUMBER[w[i]], sentence
                checked += 1
    assert checked > 1500, checked
    assert attracted > 0.3 * checked, (attracted, checked)  # many intervening nouns have the other number


def test_determiners_and_gender_agree(documents):
    vowels = set("aeiou")
    n_article = n_gender = 0
    for sentence in (s for d in documents for s in d):
        w = _words(sentence)
        for x, y in zip(w, w[1:], strict=False):
            if x in ("a", "an"):
                assert (x == "an") == (y[0] in vowels), sentence
                n_article += 1
            if x in ("this", "these") and y in C.NOUN_NUMBER:
                assert C.NOUN_NUMBER[y] == ("pl" if x == "these" else "sg"), sentence
        m = re.match(r"(\w+) has an? (sister|daughter|aunt|brother|son|uncle) called (\w+)\.", sentence)
        if m:
            assert C.GENDER[m[3]] == ("f" if m[2] in ("sister", "daughter", "aunt") else "m"), sentence
            n_gender += 1
        m = re.match(r"([A-Z]\w+) \w+ (his|her) \w+ before (he|she) went", sentence)
        if m and m[1] not in ("He", "She"):
            g = C.GENDER[m[1]]
            assert (m[2], m[3]) == (("her", "she") if g == "f" else ("his", "he")), sentence
            n_gender += 1
    assert n_article > 500 and n_gender > 100


def test_next_sentence_signal(documents):
    """Every sentence after the first mentions a character of the document; topics differ across documents."""
    pronouns = {"he", "she", "they", "his", "her", "their", "him"}
    names = set(C.FEMALE_NAMES + C.MALE_NAMES)
    for d in documents[:300]:
        doc_names = {x for x in WORD.findall(" ".join(d)) if x in names}
        assert 1 <= len(doc_names) <= 2
        for s in d[1:]:
            assert doc_names & set(WORD.findall(s)) or pronouns & set(_words(s)), (s, d)
    _, topics = generate_corpus_with_topics(1200, seed=5)
    same = sum(a == b for a, b in zip(topics, topics[1:], strict=False)) / (len(topics) - 1)
    assert same < 0.15  # about 1/12


def test_corpus_errors():
    with pytest.raises(ValueError, match="non-negative integer"):
        generate_corpus(-1)
    with pytest.raises(ValueError, match="min_sentences <= max_sentences"):
        generate_corpus(3, min_sentences=5, max_sentences=4)
    with pytest.raises(ValueError, match="Unknown topics \\['cars'\\]"):
        generate_corpus(3, topics=["cars"])


# --------------------------------------------------------------------------------------------------
# Sentiment task
# --------------------------------------------------------------------------------------------------


def test_sentiment_is_balanced_determined_and_fools_bag_of_words(documents):
    train, test = generate_sentiment(2000, seed=0), generate_sentiment(1000, seed=1)
    assert train == generate_sentiment(2000, seed=0) and train != test
    assert sum(y for _, y in train) == 1000 and sum(y for _, y in test) == 500
    assert all(sentiment_rule(t) == y for t, y in train + test)  # a reader who knows the rule gets 100%
    texts = " ".join(t for t, _ in train)
    assert " not " in texts and " but " in texts and "Although" in texts
    unigram = bag_of_words_baseline(train, test)
    assert 0.5 < unigram < 0.8, unigram
    bigram = bag_of_words_baseline(train, test, max_n=2)  # n-grams see "not good" but not "but"
    assert unigram + 0.1 < bigram < 0.92, bigram
    corpus_words = {w.lower() for d in documents for s in d for w in WORD.findall(s)}
    task_words = {w.lower() for t, _ in train for w in WORD.findall(t)}
    assert task_words <= corpus_words, task_words - corpus_words


def test_denying_frames_make_scope_decide_and_keep_bag_of_words_fooled():
    train = generate_sentiment(2000, seed=0, negated_frames=0.15)
    test = generate_sentiment(1000, seed=1, negated_frames=0.15)
    assert sum(y for _, y in train) == 1000 and all(sentiment_rule(t) == y for t, y in train + test)
    forms = Counter(review_form(t) for t, _ in train)
    assert 0.12 < forms["denied"] / len(train) < 0.18 and {"plain", "negated", "but", "although"} <= set(forms)
    assert not any(review_form(t) == "denied" for t, _ in generate_sentiment(500, seed=0))  # off by default
    # and off means the examples generated before the frames existed (a profile's task with negated_frames=0)
    default = json.dumps([list(example) for example in generate_sentiment(2000, seed=0)])
    assert hashlib.sha256(default.encode()).hexdigest()[:16] == "939f68826eab5bdd"
    # a denied clause is plain and has the opposite polarity: the frame's "not" is the only one
    assert sentiment_rule("Anna did not think that the soup was good.") == 0
    assert sentiment_rule("It is not true that the film was awful.") == 1
    assert review_form("Tom said that the soup was good but the film was not bad.") == "but"
    unigram = bag_of_words_baseline(train, test)
    assert 0.45 < unigram < 0.65, unigram  # the tiny profile's teacher: 0.81-0.88 at 650 examples (profiles.py)


def test_sentiment_errors():
    with pytest.raises(ValueError, match="Not a review"):
        sentiment_rule("The dog runs.")
    with pytest.raises(ValueError, match="non-empty train and test"):
        bag_of_words_baseline([], [("a", 1)])
    with pytest.raises(ValueError, match="negated_frames is a share"):
        generate_sentiment(10, negated_frames=1.5)


# --------------------------------------------------------------------------------------------------
# Real text
# --------------------------------------------------------------------------------------------------


def test_load_documents_from_text_files(tmp_path):
    (tmp_path / "a.txt").write_text("Anna is a farmer.\nShe feeds the dogs.\n\n\nTom is a cook. He bakes bread!\n")
    (tmp_path / "b.txt").write_text("Dr. Smith came home. It rained.\n")
    (tmp_path / "notes.md").write_text("ignored\n")
    docs = load_documents(tmp_path)
    assert docs == [
        ["Anna is a farmer.", "She feeds the dogs."], ["Tom is a cook.", "He bakes bread!"],
        ["Dr. Smith came home.", "It rained."],
    ]
    assert load_documents(str(tmp_path / "a.txt"), max_documents=1) == docs[:1]


def test_load_documents_wikitext_layout(tmp_path):
    path = tmp_path / "wikitext.txt"
    path.write_text(" = Valkyria = \n\n It has 1 @,@ 000 fans . It is well @-@ known .\n = = Plot = = \n"
                    " The end .\n = Second = \n Text here .\n")
    assert load_documents(path) == [["It has 1,000 fans .", "It is well-known .", "The end ."], ["Text here ."]]


def test_load_documents_from_the_hub_offline(monkeypatch):
    """The hub path, with datasets.load_dataset replaced by a stand-in (no network in tests)."""
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        if path == "offline/missing":
            raise ConnectionError("Couldn't reach 'offline/missing' on the Hub")
        lines = [" = Valkyria = ", "", " It has 1 @,@ 000 fans . It is well @-@ known .", " = Second = ", " Text ."]
        return datasets.Dataset.from_dict({"text": lines, "other": list(range(len(lines)))})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_documents("wikitext", split="validation") == [["It has 1,000 fans .", "It is well-known ."], ["Text ."]]
    assert calls[-1] == ("wikitext", "wikitext-103-raw-v1", "validation")
    assert len(load_documents("someone/corpus")) == 4  # other datasets: one row, one document
    with pytest.raises(ValueError, match="has no column 'body'.*Pass text_column"):
        load_documents("someone/corpus", text_column="body")
    with pytest.raises(ValueError, match="Could not load 'offline/missing'.*ConnectionError.*Pass a path"):
        load_documents("offline/missing")


def test_split_sentences():
    assert split_sentences("It was 2.5 m long. Then Dr. Who came? \"Yes.\" J. Smith left") == [
        "It was 2.5 m long.", "Then Dr. Who came?", "\"Yes.\"", "J. Smith left"]
    assert split_sentences("  ") == []


def test_load_documents_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file or directory.*Pass a path to a .txt file"):
        load_documents(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="contains no text"):
        load_documents(tmp_path / "empty.txt")
    (tmp_path / "blank.txt").write_text("\n   \n\n")
    with pytest.raises(ValueError, match="contains no text"):
        load_documents(tmp_path / "blank.txt")
    (tmp_path / "d").mkdir()
    with pytest.raises(FileNotFoundError, match="contains no .txt files"):
        load_documents(tmp_path / "d")


# --------------------------------------------------------------------------------------------------
# WordPiece
# --------------------------------------------------------------------------------------------------


def test_tokenizer_layout_and_round_trip(tokenizer, documents):
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
    assert 1500 < len(tokenizer) <= 2048
    enc = tokenizer("Anna fed the goats.", "She was happy.")
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["[CLS]", "anna", "fed", "the", "goats", ".", "[SEP]", "she", "was", "happy", ".", "[SEP]"]
    assert enc["token_type_ids"] == [0] * 7 + [1] * 5
    sentences = [s for d in documents[:200] for s in d]
    for s in sentences:
        assert tokenizer.decode(tokenizer(s, add_special_tokens=False)["input_ids"]) == s.lower()
    pieces = tokenizer.tokenize("Unbelievably")  # not a corpus word: split into pieces, nothing lost
    assert len(pieces) > 1 and all(p.startswith("##") for p in pieces[1:])
    assert "".join(p.removeprefix("##") for p in pieces) == "unbelievably"


def test_tokenizer_saves_and_loads_with_autotokenizer(tokenizer, documents, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    sentences = [s for d in documents[:50] for s in d]
    expected = tokenizer(sentences[:-1], sentences[1:])
    for other in (loaded, again):
        got = other(sentences[:-1], sentences[1:])
        assert got["input_ids"] == expected["input_ids"]
        assert got["token_type_ids"] == expected["token_type_ids"]
        assert other.mask_token_id == tokenizer.mask_token_id and other.pad_token_id == 0


def test_train_wordpiece_is_deterministic_and_offers_three_algorithms(documents, tokenizer):
    assert train_wordpiece(documents, vocab_size=2048).get_vocab() == tokenizer.get_vocab()
    texts = [s for d in documents[:300] for s in d]
    for algorithm in ("score", "tokenizers"):
        other = train_wordpiece(texts, vocab_size=400, algorithm=algorithm)
        assert len(other) == 400 and other.convert_tokens_to_ids("[MASK]") == 4
        ids = other("The dogs near the old barn run.")["input_ids"]
        assert other.decode(ids, skip_special_tokens=True) == "the dogs near the old barn run."
    with pytest.raises(TokenizerError, match="Unknown algorithm 'bpe'"):
        train_wordpiece(texts, vocab_size=400, algorithm="bpe")


def test_train_wordpiece_writes_output_dir(tmp_path):
    tok = train_wordpiece(["the dog runs.", "the dogs run."] * 20, vocab_size=60, output_dir=tmp_path / "tok")
    assert load_tokenizer(tmp_path / "tok")("the dogs")["input_ids"] == tok("the dogs")["input_ids"]


def test_tokenizer_errors(tokenizer, tmp_path):
    with pytest.raises(TokenizerError, match="larger than the 5 special tokens"):
        train_wordpiece(["a b c"], vocab_size=5)
    with pytest.raises(TokenizerError, match="no text to learn from"):
        train_wordpiece([], vocab_size=100)
    with pytest.raises(TokenizerError, match="Could not load a tokenizer from .*save_pretrained"):
        load_tokenizer(tmp_path / "missing")
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path / "tok")
    no_mask = AutoTokenizer.from_pretrained(tmp_path / "tok", mask_token=None, pad_token=None)
    with pytest.raises(TokenizerError, match=r"no mask_token \(usually \[MASK\]\), pad_token .*add_special_tokens"):
        check_tokenizer(no_mask)
    with pytest.raises(TokenizerError, match="no mask_token"):
        MLMCollator(no_mask)


def test_wordpiece_scores_prefer_pairs_whose_parts_are_rare_apart():
    counts = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}  # the example of the HF course
    scores = wordpiece_pair_scores(counts)
    best = scores[0]
    assert (best[0], best[1]) == ("##g", "##s")  # 5 / (20 * 5): "##s" never occurs without "##g"
    by_freq = max(scores, key=lambda x: x[2])
    assert (by_freq[0], by_freq[1]) == ("##u", "##g")  # BPE would merge the most frequent pair
    assert count_words(["The dog, the DOG."]) == {"the": 2, "dog": 2, ",": 1, ".": 1}


# --------------------------------------------------------------------------------------------------
# Next-sentence pairs
# --------------------------------------------------------------------------------------------------


def test_pairs_have_bert_layout(examples, tokenizer):
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert examples.column_names == ["input_ids", "token_type_ids", "next_sentence_label"]
    for ex in examples:
        ids, types = ex["input_ids"], ex["token_type_ids"]
        a, b = split_pair(ids, types)
        assert len(ids) == len(types) <= 64
        assert len(a) >= 1 and len(b) >= 1
        assert ids == [cls, *a, sep, *b, sep]
        assert types == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert cls not in a + b and sep not in a + b
    labels = examples["next_sentence_label"]
    assert len(labels) >= 2000
    assert abs(sum(labels) / len(labels) - 0.5) < 0.03
    assert set(labels) == {IS_NEXT, NOT_NEXT} == {0, 1}


def test_is_next_pairs_are_consecutive_text(documents, tokenizer):
    docs = documents[:300]
    tokenized = tokenize_documents(docs, tokenizer)
    flat = [[t for s in d for t in s] for d in tokenized]
    starts = [{sum(len(s) for s in d[:k]) for k in range(len(d) + 1)} for d in tokenized]  # sentence bounds

    texts = ["".join(map(chr, f)) for f in flat]  # ids as characters: substring search is fast

    def find(seq):
        """(document, start) of every occurrence of seq as contiguous text."""
        needle, hits = "".join(map(chr, seq)), []
        for i, text in enumerate(texts):
            j = text.find(needle)
            while j >= 0:
                hits.append((i, j))
                j = text.find(needle, j + 1)
        return hits

    # Long enough that nothing is truncated: A + B is exactly a run of whole sentences of one document.
    ds = build_pretraining_examples(docs, tokenizer, max_length=512, seed=1, short_seq_prob=0.0)
    n_random_contiguous = n_random = 0
    for ex in ds:
        a, b = split_pair(ex["input_ids"], ex["token_type_ids"])
        hits = find(a + b)
        if ex["next_sentence_label"] == IS_NEXT:
            assert any(j in starts[i] and j + len(a) in starts[i] for i, j in hits), tokenizer.decode(a + b)
        else:
            n_random += 1
            n_random_contiguous += bool(hits)
            assert find(a) and find(b)  # both are text of the corpus, but B does not continue A
    assert n_random > 100 and n_random_contiguous == 0


def test_pairs_are_truncated_and_deterministic(documents, tokenizer):
    docs = documents[:200]
    short = build_pretraining_examples(docs, tokenizer, max_length=16, seed=7)
    assert max(len(x) for x in short["input_ids"]) <= 16
    assert short["input_ids"] == build_pretraining_examples(docs, tokenizer, max_length=16, seed=7)["input_ids"]
    other = build_pretraining_examples(docs, tokenizer, max_length=16, seed=8)
    assert short["input_ids"] != other["input_ids"]
    twice = build_pretraining_examples(docs, tokenizer, max_length=16, seed=7, dupe_factor=2)
    assert len(twice) > 1.8 * len(short)
    tiny = build_pretraining_examples(docs, tokenizer, max_length=5, seed=0)
    assert all(len(x) == 5 for x in tiny["input_ids"])


def test_pair_errors(documents, tokenizer):
    with pytest.raises(ValueError, match="documents is empty"):
        build_pretraining_examples([], tokenizer)
    with pytest.raises(ValueError, match="max_length >= 5"):
        build_pretraining_examples(documents[:10], tokenizer, max_length=4)
    with pytest.raises(ValueError, match="1 non-empty document.*needs at least 2"):
        build_pretraining_examples([documents[0], ["", ""]], tokenizer)
    with pytest.raises(TypeError, match=r"documents\[0\] is a string"):
        build_pretraining_examples(["Anna is a farmer.", "Tom is a cook."], tokenizer)
    with pytest.raises(ValueError, match="dupe_factor"):
        build_pretraining_examples(documents[:10], tokenizer, dupe_factor=0)


# --------------------------------------------------------------------------------------------------
# Masked-LM collator
# --------------------------------------------------------------------------------------------------


def test_mlm_collator_rates_and_labels(examples, tokenizer):
    features = [examples[i] for i in range(2000)]
    batch = MLMCollator(tokenizer, seed=0)(features)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label"}
    original = MLMCollator(tokenizer).pad(features)["input_ids"]  # the same padding, no masking
    B, L = original.shape
    assert batch["input_ids"].shape == batch["labels"].shape == batch["token_type_ids"].shape == (B, L)
    assert batch["next_sentence_label"].tolist() == [f["next_sentence_label"] for f in features]
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    selected = batch["labels"] != -100
    assert not (selected & special).any()  # [CLS], [SEP], [PAD] are never predicted
    assert torch.equal(batch["labels"][selected], original[selected])
    assert torch.equal(batch["input_ids"][~selected], original[~selected])  # only selected tokens change
    rate = selected.sum().item() / (~special).sum().item()
    assert abs(rate - 0.15) < 0.005, rate
    now, was = batch["input_ids"][selected], original[selected]
    masked = (now == tokenizer.mask_token_id).float().mean().item()
    random_ = ((now != tokenizer.mask_token_id) & (now != was)).float().mean().item()
    kept = (now == was).float().mean().item()
    assert abs(masked - 0.8) < 0.015 and abs(random_ - 0.1) < 0.01 and abs(kept - 0.1) < 0.01
    replaced = now[(now != tokenizer.mask_token_id) & (now != was)]
    assert not torch.isin(replaced, torch.tensor(tokenizer.all_special_ids)).any()
    padded = batch["attention_mask"] == 0
    assert (batch["input_ids"][padded] == tokenizer.pad_token_id).all() and (batch["token_type_ids"][padded] == 0).all()


def test_mlm_collator_is_reproducible_and_handles_single_segments(tokenizer):
    features = [{"input_ids": tokenizer(s)["input_ids"]} for s in ["Anna fed the goats.", "He ran.", "He ran home."]]
    a = MLMCollator(tokenizer, seed=1, mlm_probability=0.5)(features)
    b = MLMCollator(tokenizer, seed=1, mlm_probability=0.5)(features)
    assert all(torch.equal(a[k], b[k]) for k in a)
    g = torch.Generator().manual_seed(1)
    c = MLMCollator(tokenizer, generator=g, mlm_probability=0.5)(features)
    assert torch.equal(a["labels"], c["labels"])
    d = MLMCollator(tokenizer, return_token_type_ids=False, pad_to_multiple_of=8)(features)
    longest = max(len(f["input_ids"]) for f in features)
    assert set(d) == {"input_ids", "attention_mask", "labels"}
    assert d["input_ids"].shape[1] % 8 == 0 and 0 <= d["input_ids"].shape[1] - longest < 8
    assert d["attention_mask"].sum(1).tolist() == [len(f["input_ids"]) for f in features]


def test_mlm_collator_errors(tokenizer):
    with pytest.raises(ValueError, match="mlm_probability must be in \\(0, 1\\]"):
        MLMCollator(tokenizer, mlm_probability=0.0)
    with pytest.raises(ValueError, match="exceeds 1"):
        MLMCollator(tokenizer, mask_replace_prob=0.9, random_replace_prob=0.2)
    with pytest.raises(ValueError, match="random_replace_prob must be a probability"):
        MLMCollator(tokenizer, random_replace_prob=-0.1)
    with pytest.raises(ValueError, match="empty list of features"):
        MLMCollator(tokenizer)([])
