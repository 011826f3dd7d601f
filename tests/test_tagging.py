"""The generated tagging task, WordPiece label alignment, entity scores and the lookup baseline."""

from __future__ import annotations

import pytest

from studentbert.data import tagging_dataset, train_wordpiece
from studentbert.data.lexicon import FEMALE_NAMES, MALE_NAMES, TOWNS
from studentbert.data.tagging import (
    IGNORE_INDEX,
    ORG_NOUNS,
    TAG_NAMES,
    TITLES,
    align_labels,
    entity_spans,
    entity_word_accuracy,
    generate_tagged,
    lookup_baseline,
    tagging_datasets,
    tagging_scores,
    tokenize_and_align_labels,
    unseen_entities,
    word_predictions,
)

NAMES = set(FEMALE_NAMES + MALE_NAMES)


@pytest.fixture(scope="module")
def examples():
    return generate_tagged(600, seed=0)


def test_every_word_has_the_tag_of_what_it_is(examples):
    seen = set()
    for words, tags in examples:
        assert len(words) == len(tags) and words[-1] == "."
        for i, (word, tag) in enumerate(zip(words, tags, strict=True)):
            seen.add(tag)
            if word in NAMES:  # capitalised: a person ("mark", the verb, is lower case)
                assert tag == "B-PER", (word, words)
            elif word in TOWNS:  # a town is a place, a surname or the first word of an organisation
                before, after = words[i - 1] if i else None, words[i + 1]
                if tag == "I-PER":  # Emma Kingsley
                    assert before in NAMES and tags[i - 1] == "B-PER"
                elif tag == "B-PER":  # Dr Kingsley
                    assert before in TITLES and tags[i - 1] == "O"
                elif tag == "B-ORG":  # the Kingsley choir
                    assert after in ORG_NOUNS and tags[i + 1] == "I-ORG"
                else:  # in Kingsley
                    assert tag == "B-LOC", (word, tag, words)
                    assert after not in ORG_NOUNS and before not in NAMES | set(TITLES)
            elif tag == "I-ORG":
                assert word in ORG_NOUNS and tags[i - 1] == "B-ORG"
            else:
                assert tag == "O", (word, tag, words)
    assert seen == set(TAG_NAMES)


def test_known_sentences_are_tagged_exactly(examples):
    pairs = {tuple(zip(w, t, strict=True)) for w, t in examples}
    # some "<Name> is a <role> who lives in <Town> ." sentence, and one with a full name and an organisation
    lives = [p for p in pairs if [w for w, _ in p[-5:-2]] == ["who", "lives", "in"]]
    assert lives and all(p[-2][1] == "B-LOC" and "B-PER" in (p[0][1], p[1][1]) for p in lives)
    full = [p for p in pairs if any(t == "I-PER" for _, t in p) and any(t == "B-ORG" for _, t in p)]
    assert full
    # the word "mark" is a verb (O) after "teachers", and "Mark" a person
    verbs = [p for p in pairs if ("mark", "O") in p]
    assert verbs and all(p[p.index(("mark", "O")) - 1][0] == "teachers" for p in verbs)


def test_deterministic_and_seeded():
    assert generate_tagged(50, seed=3) == generate_tagged(50, seed=3)
    assert generate_tagged(50, seed=3) != generate_tagged(50, seed=4)
    a, names = tagging_dataset(20, seed=1)
    b, _ = tagging_dataset(20, seed=1)
    assert a["tokens"] == b["tokens"] and a["tags"] == b["tags"]
    assert names == list(TAG_NAMES) == a.features["tags"].feature.names
    assert set(a.column_names) == {"tokens", "tags"} and len(a) == 20
    words, tags = generate_tagged(20, seed=1)[0]
    assert a[0]["tokens"] == words and [names[t] for t in a[0]["tags"]] == tags


def test_entity_pools_and_unseen_split():
    for words, _ in generate_tagged(200, seed=0, first_names=["Anna", "Tom"], towns=["Ashford"]):
        assert {w for w in words if w in NAMES} <= {"Anna", "Tom"}
        assert {w for w in words if w in TOWNS} <= {"Ashford"}
    names, towns = unseen_entities(0.25, seed=0)
    assert names and towns and unseen_entities(0.25, seed=0) == (names, towns)
    train, test, tag_names = tagging_datasets(300, 300, seed=0)
    train_words = {w for ws in train["tokens"] for w in ws}
    test_words = {w for ws in test["tokens"] for w in ws}
    assert not train_words & (set(names) | set(towns))  # kept out of training
    assert test_words & set(names) and test_words & set(towns)  # but tested
    assert tag_names == list(TAG_NAMES)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError, match="num_examples"):
        generate_tagged(bad)


def test_bad_pools_raise():
    with pytest.raises(ValueError, match="first_names"):
        generate_tagged(5, first_names=["Zaphod"])
    with pytest.raises(ValueError, match="towns"):
        generate_tagged(5, towns=[])
    with pytest.raises(ValueError, match="fraction"):
        unseen_entities(1.0)


def test_align_labels_first_piece_only():
    # [CLS] w0 w1=(2 pieces) w2=(3 pieces) [SEP] [PAD]
    word_ids = [None, 0, 1, 1, 2, 2, 2, None, None]
    assert align_labels(word_ids, [5, 3, 1]) == [-100, 5, 3, -100, 1, -100, -100, -100, -100]
    assert align_labels(word_ids, [5, 3, 1], label_all_subtokens=True) == [-100, 5, 3, 3, 1, 1, 1, -100, -100]
    with pytest.raises(ValueError, match="out of range"):
        align_labels([None, 0, 1, None], [4])


def test_tokenize_and_align_labels_with_wordpiece():
    examples = generate_tagged(300, seed=0)
    # a small vocabulary, so that many words are cut into several pieces
    tokenizer = train_wordpiece([" ".join(w) for w, _ in examples], vocab_size=120)
    index = {t: i for i, t in enumerate(TAG_NAMES)}
    batch = {"tokens": [w for w, _ in examples[:40]], "tags": [[index[t] for t in ts] for _, ts in examples[:40]]}
    encoded = tokenize_and_align_labels(batch, tokenizer, max_length=128)
    split_words = 0
    for i, (words, tags) in enumerate(zip(batch["tokens"], batch["tags"], strict=True)):
        word_ids, labels = encoded.word_ids(i), encoded["labels"][i]
        assert len(labels) == len(encoded["input_ids"][i])
        labelled = [(w, y) for w, y in zip(word_ids, labels, strict=True) if y != IGNORE_INDEX]
        assert [w for w, _ in labelled] == list(range(len(words)))  # every word once, in order
        assert [y for _, y in labelled] == tags
        for k, w in enumerate(word_ids):  # the labelled token is the word's first piece
            if labels[k] != IGNORE_INDEX:
                assert k == 0 or word_ids[k - 1] != w
        split_words += sum(word_ids.count(w) > 1 for w in range(len(words)))
    assert split_words > 0  # the test did exercise sub-tokens
    truncated = tokenize_and_align_labels(batch, tokenizer, max_length=6)
    assert all(len(y) <= 6 for y in truncated["labels"])


def test_entity_spans_read_iob2_like_conlleval():
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5)}
    assert entity_spans(["O", "I-ORG", "I-ORG"]) == {("ORG", 1, 3)}  # I- without B- starts an entity
    assert entity_spans(["B-PER", "I-ORG"]) == {("PER", 0, 1), ("ORG", 1, 2)}
    assert entity_spans(["O", "O"]) == set()
    with pytest.raises(ValueError, match="IOB2"):
        entity_spans(["PER"])


def test_tagging_scores():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]
    assert tagging_scores(gold, gold) == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]  # the person is cut short
    s = tagging_scores(gold, pred)
    assert s["accuracy"] == pytest.approx(6 / 7)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        tagging_scores(gold, pred[:1])
    with pytest.raises(ValueError):
        tagging_scores([["O"]], [["O", "O"]])


def test_lookup_baseline():
    train_tokens = [["Ashford", "is", "nice"], ["in", "Ashford"], ["in", "ashford"], ["Emma", "Ashford"]]
    train_tags = [["B-LOC", "O", "O"], ["O", "B-LOC"], ["O", "B-LOC"], ["B-PER", "I-PER"]]
    predicted = lookup_baseline(train_tokens, train_tags, [["Emma", "ASHFORD", "Zoe"]])
    assert predicted == [["B-PER", "B-LOC", "O"]]  # majority tag, case-insensitive; unknown word -> O
    with pytest.raises(ValueError):
        lookup_baseline([], [], [["x"]])


def test_word_predictions_reads_the_first_piece_and_pads_truncated_words():
    names = ["O", "B-PER", "I-PER"]
    predicted = [[0, 1, 2, 2, 0, 0], [0, 2, 1, 0, 0, 0]]
    labels = [[-100, 1, 2, -100, 0, -100], [-100, 2, -100, -100, -100, -100]]
    assert word_predictions(predicted, labels, [3, 2], names) == [["B-PER", "I-PER", "O"], ["I-PER", "O"]]
    with pytest.raises(ValueError, match="only 1 words"):
        word_predictions(predicted, labels, [1, 2], names)
    with pytest.raises(ValueError, match="must match"):
        word_predictions(predicted, labels[:1], [3, 2], names)


def test_entity_word_accuracy_splits_seen_and_unseen():
    train = [["Emma", "lives", "in", "Ashford"]]
    test = [["emma", "met", "Zoe", "in", "Kingsley"]]
    gold = [["B-PER", "O", "B-PER", "O", "B-LOC"]]
    pred = [["B-PER", "O", "O", "O", "B-LOC"]]
    result = entity_word_accuracy(test, gold, pred, train)
    assert result == {"seen": (1.0, 1), "unseen": (0.5, 2)}
    assert entity_word_accuracy([["a"]], [["O"]], [["O"]], train) == {"seen": (None, 0), "unseen": (None, 0)}
    with pytest.raises(ValueError):
        entity_word_accuracy(test, gold, [["O"]], train)
