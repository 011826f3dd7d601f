"""A generated named-entity task (token tagging) in the words of the corpus, and the tools to train on it.

Token classification gives every *word* of a sentence a label. The classic example is named-entity
recognition (NER) in the style of CoNLL-2003 (Tjong Kim Sang and De Meulder, 2003): each word is tagged
``B-<type>`` (it begins an entity), ``I-<type>`` (it continues one) or ``O`` (outside any entity). CoNLL-2003
needs a download; :func:`tagging_dataset` generates a task of the same shape offline, from the lexicon of
:mod:`studentbert.data.corpus` (the words of :mod:`studentbert.data.lexicon`), with exact labels (the generator knows what every word is):

* ``PER``: a person, a first name of the corpus, sometimes with a surname: ``Emma Kingsley``
  (``B-PER I-PER``);
* ``LOC``: a town: ``in Kingsley`` (``B-LOC``);
* ``ORG``: a town's group: ``the Kingsley choir`` (``B-ORG I-ORG``).

The surnames are the town names, as many English surnames are (Ashford, Kingsley, Westbury), so the same word
is a person, a place or part of an organisation depending on its neighbours: a tagger that looks a word up
cannot get all three right, one that reads the context can. :func:`tagging_datasets` can also keep some names
and towns out of the training sentences, so that the test set asks whether a model recognises an entity it has
never seen labelled (the pretrained student has seen every name of the corpus, unlabelled).

The rest serves any tagging data set, the generated one and CoNLL-2003 (:func:`load_conll2003`) alike:
:func:`align_labels` and :func:`tokenize_and_align_labels` move word labels onto WordPiece tokens,
:func:`word_predictions` reads one tag per word back off the tokens, :func:`entity_spans` and
:func:`tagging_scores` score predictions (word accuracy, entity-level precision, recall and F1 as in the CoNLL
evaluation), :func:`entity_word_accuracy` separates entities seen in training from new ones, and
:func:`lookup_baseline` is the trivial tagger to beat.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from .lexicon import FEMALE_NAMES, MALE_NAMES, POSITIVE, TOPICS, TOWNS, article

TAG_NAMES: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-LOC", "B-ORG", "I-ORG")
"""The tags of the generated task, in id order (IOB2, as CoNLL-2003; there are no two-word towns, so no I-LOC)."""

CONLL2003_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
"""The ``ner_tags`` of CoNLL-2003 on the Hugging Face hub, in id order."""

ORG_NOUNS: tuple[str, ...] = ("orchestra", "choir", "band", "team", "club")
"""Nouns that make a town an organisation: ``the Ashford choir``."""

FIRST_NAMES: tuple[str, ...] = FEMALE_NAMES + MALE_NAMES
IGNORE_INDEX = -100  # the label that torch's cross-entropy (and the Trainer) skips

TITLES: tuple[str, ...] = ("Mr", "Mrs", "Dr")
"""Titles before a surname: ``Dr Kingsley`` is a person (``O B-PER``)."""

_SURNAME_PROB = 0.3  # "Emma Kingsley"
_TITLE_PROB = 0.15  # "Dr Kingsley"
_WHEN = ("last week", "yesterday", "on Monday", "last summer", "on Friday", "in the morning")
_PREPOSITIONS = ("near", "behind", "beside")

Tagged = list[tuple[str, str]]  # (word, tag) pairs


def _check_pool(pool: Sequence[str] | None, default: tuple[str, ...], what: str) -> tuple[str, ...]:
    if pool is None:
        return default
    pool = tuple(pool)
    unknown = sorted(set(pool) - set(default))
    if not pool or unknown:
        raise ValueError(f"{what} must be a non-empty subset of the corpus's {what}; unknown: {unknown[:5]}.")
    return pool


class _TaggedWriter:
    """Writes one tagged sentence at a time; every word comes with its tag."""

    def __init__(self, rng: random.Random, first_names: tuple[str, ...], towns: tuple[str, ...]) -> None:
        self.rng, self.first_names, self.towns = rng, first_names, towns

    # --- entities ---------------------------------------------------------------------------------------
    def person(self) -> Tagged:
        """``Emma``, ``Emma Kingsley`` or ``Dr Kingsley`` (the title is not part of the entity, as in CoNLL)."""
        rng, k = self.rng, self.rng.random()
        if k < _TITLE_PROB:
            return [(rng.choice(TITLES), "O"), (rng.choice(self.towns), "B-PER")]
        if k < _TITLE_PROB + _SURNAME_PROB:
            return [(rng.choice(self.first_names), "B-PER"), (rng.choice(self.towns), "I-PER")]
        return [(rng.choice(self.first_names), "B-PER")]

    def two_people(self) -> tuple[Tagged, Tagged]:
        a, b = self.person(), self.person()
        while b[-1][0] == a[-1][0]:
            b = self.person()
        return a, b

    def town(self) -> Tagged:
        return [(self.rng.choice(self.towns), "B-LOC")]

    def org(self) -> Tagged:
        return [(self.rng.choice(self.towns), "B-ORG"), (self.rng.choice(ORG_NOUNS), "I-ORG")]

    def person_or_town(self) -> Tagged:
        """A slot that a person and a town fill equally well: only the words themselves tell them apart."""
        return self.person() if self.rng.random() < 0.5 else self.town()

    # --- plain words --------------------------------------------------------------------------------------
    @staticmethod
    def words(text: str) -> Tagged:
        return [(w, "O") for w in text.split()]

    def sentence(self) -> Tagged:
        rng, w = self.rng, self.words
        t = rng.choice(TOPICS)
        role = rng.choice(t.roles)
        obj = rng.choice(t.objects)[0]
        place = rng.choice(t.places)[0]
        when = rng.choice(_WHEN)
        k = rng.randrange(16)
        if k == 0:
            s = self.person() + w(f"is {article(role)} {role} who lives in") + self.town()
        elif k == 1:
            s = self.person() + w(f"works as {article(role)} {role} in") + self.town()
        elif k == 2:
            a, b = self.two_people()
            s = a + w("met") + b + w(f"near the {place} in") + self.town()
        elif k == 3:
            s = self.person() + w(f"{rng.choice(t.actions)[2]} the {obj} {rng.choice(_PREPOSITIONS)} the {place}")
        elif k == 4:
            s = self.person() + w("joined the") + self.org() + w(when)
        elif k == 5:
            s = w("the") + self.org() + w("played in") + self.town() + w(when)
        elif k == 6:
            s = self.person() + w(f"{rng.choice(('plays', 'sings'))} in the") + self.org()
        elif k == 7:
            source = self.person() if rng.random() < 0.7 else w("the") + self.org()
            s = w("according to") + source + w(f", the {rng.choice(t.items)} was {rng.choice(POSITIVE)}")
        elif k == 8:
            a, b = self.town(), self.town()
            s = self.person() + w("moved from") + a + w("to") + b + w(when)
        elif k == 9:
            a, b = self.two_people()
            s = a + w("and") + b + w(f"{rng.choice(t.actions)[2]} the {rng.choice(t.objects)[1]} in") + self.town()
        elif k == 10:  # no entity at all; "mark" (a verb here) is also a first name
            plural = rng.choice(t.agents)[1]
            s = w(f"the {plural} near the {place} {rng.choice(t.verbs)[1]} every day")
            if rng.random() < 0.3:
                s = w(f"the teachers mark the {rng.choice(('essays', 'exams'))} {when}")
        elif k == 11:
            s = self.person() + w("wrote to the") + self.org() + w(f"about the {rng.choice(t.items)}")
        elif k == 12:
            s = self.person() + w("visited") + self.person_or_town() + w(when)
        elif k == 13:
            s = self.person() + w(f"often {rng.choice(('talks', 'writes', 'thinks'))} about") + self.person_or_town()
        elif k == 14:
            s = self.person_or_town() + w(f"was {rng.choice(POSITIVE)} {when}")
        else:
            s = w(f"{rng.choice(('everyone', 'nobody', 'the town'))} {rng.choice(('remembers', 'knows'))}") + \
                self.person_or_town()
        s = s + [(".", "O")]
        first, tag = s[0]
        return [(first[0].upper() + first[1:], tag)] + s[1:]


def generate_tagged(
    num_examples: int, seed: int = 0, first_names: Sequence[str] | None = None, towns: Sequence[str] | None = None,
) -> list[tuple[list[str], list[str]]]:
    """``num_examples`` tagged sentences ``(words, tags)``, tags as strings of :data:`TAG_NAMES`.

    Deterministic: the same arguments give the same sentences. ``first_names`` and ``towns`` restrict the
    entities to subsets of the corpus's names and towns (default: all of them).
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples <= 0:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples!r}.")
    names = _check_pool(first_names, FIRST_NAMES, "first_names")
    places = _check_pool(towns, TOWNS, "towns")
    writer = _TaggedWriter(random.Random(f"tagging-{seed}"), names, places)
    out = []
    for _ in range(num_examples):
        pairs = writer.sentence()
        out.append(([word for word, _ in pairs], [tag for _, tag in pairs]))
    return out


def tagging_dataset(
    num_examples: int, seed: int = 0, first_names: Sequence[str] | None = None, towns: Sequence[str] | None = None,
):
    """:func:`generate_tagged` as ``(datasets.Dataset, tag names)``.

    The dataset has columns ``tokens`` (the words) and ``tags`` (their tag ids, a ``Sequence(ClassLabel)``
    whose names are :data:`TAG_NAMES`), the layout of CoNLL-2003 on the hub (there the column is ``ner_tags``).
    """
    import datasets

    examples = generate_tagged(num_examples, seed, first_names, towns)
    index = {t: i for i, t in enumerate(TAG_NAMES)}
    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "tags": datasets.Sequence(datasets.ClassLabel(names=list(TAG_NAMES))),
    })
    data = {"tokens": [words for words, _ in examples], "tags": [[index[t] for t in tags] for _, tags in examples]}
    return datasets.Dataset.from_dict(data, features=features), list(TAG_NAMES)


def unseen_entities(fraction: float = 0.25, seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(first names, towns)`` to keep out of the training sentences: ``fraction`` of each, chosen by ``seed``."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}.")
    rng = random.Random(f"unseen-{seed}")
    names = sorted(rng.sample(FIRST_NAMES, round(fraction * len(FIRST_NAMES))))
    towns = sorted(rng.sample(TOWNS, round(fraction * len(TOWNS))))
    return tuple(names), tuple(towns)


def tagging_datasets(num_train: int, num_test: int, seed: int = 0, unseen_fraction: float = 0.25):
    """``(train, test, tag names)`` for the generated task.

    The test sentences (seed ``seed + 1``) use every name and town; the training sentences (seed ``seed``)
    none of :func:`unseen_entities` ``(unseen_fraction, seed)``, so that the test set also measures
    whether entities never seen labelled are recognised from their context.
    """
    names, towns = unseen_entities(unseen_fraction, seed)
    train, tags = tagging_dataset(num_train, seed, [n for n in FIRST_NAMES if n not in names],
                                  [t for t in TOWNS if t not in towns])
    test, _ = tagging_dataset(num_test, seed + 1)
    return train, test, tags


# ----------------------------------------------------------------------------------------------------------
# WordPiece alignment


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int],
                 label_all_subtokens: bool = False) -> list[int]:
    """Word labels -> token labels, for one tokenized sentence.

    ``word_ids`` is what a fast tokenizer's ``encoding.word_ids()`` returns: for every token the index of
    the word it comes from, or None for a special token (``[CLS]``, ``[SEP]``, padding). The first token of
    each word gets the word's label; special tokens, and (unless ``label_all_subtokens``) the further
    pieces of a word, get :data:`IGNORE_INDEX` (-100), which the loss and the evaluation skip. So each word
    is predicted and scored exactly once, however many pieces WordPiece cut it into.
    """
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE_INDEX)
        else:
            if not 0 <= word < len(word_labels):
                raise ValueError(f"word id {word} is out of range for {len(word_labels)} word labels.")
            labels.append(word_labels[word] if word != previous or label_all_subtokens else IGNORE_INDEX)
        previous = word
    return labels


def tokenize_and_align_labels(batch: dict, tokenizer, max_length: int = 128, tags_column: str = "tags") -> dict:
    """For ``Dataset.map(..., batched=True)``: tokenize ``batch["tokens"]`` (words) and add aligned ``labels``.

    Needs a fast tokenizer (``word_ids``). Words cut off by ``max_length`` are simply not labelled.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("tokenize_and_align_labels needs a fast tokenizer (one with word_ids()).")
    encoded = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
    encoded["labels"] = [align_labels(encoded.word_ids(i), tags) for i, tags in enumerate(batch[tags_column])]
    return encoded


def word_predictions(predicted_ids, label_ids, num_words: Sequence[int], tag_names: Sequence[str]) -> list[list[str]]:
    """Token predictions -> one tag per word: the prediction at each word's labelled (first) token.

    ``predicted_ids`` and ``label_ids`` are ``(sentences, tokens)`` arrays (e.g. the arg-max of
    ``Trainer.predict(...).predictions`` and its ``label_ids``, where -100 marks tokens that carry no word label);
    ``num_words`` gives each sentence's number of words. Words cut off by truncation get ``O``.
    """
    if len(predicted_ids) != len(label_ids) or len(label_ids) != len(num_words):
        raise ValueError(f"Got {len(predicted_ids)} predicted rows, {len(label_ids)} label rows and "
                         f"{len(num_words)} sentences: they must match.")
    out = []
    for pred, labels, n in zip(predicted_ids, label_ids, num_words, strict=True):
        tags = [tag_names[int(p)] for p, y in zip(pred, labels, strict=True) if int(y) != IGNORE_INDEX]
        if len(tags) > n:
            raise ValueError(f"A sentence has {len(tags)} labelled tokens but only {n} words.")
        out.append(tags + ["O"] * (n - len(tags)))
    return out


# ----------------------------------------------------------------------------------------------------------
# scores and the baseline


def entity_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """The entities of one tag sequence, as ``(type, first word, last word + 1)``.

    IOB2 as CoNLL's ``conlleval`` reads it: an entity starts at ``B-X``, or at an ``I-X`` that does not
    continue an entity of type X (a common error of taggers), and extends over the following ``I-X``.
    """
    spans, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = tag.partition("-")
        if prefix not in ("B", "I", "O") or (prefix != "O" and not label):
            raise ValueError(f"Not an IOB2 tag: {tag!r}.")
        continues = prefix == "I" and label == kind
        if start is not None and not continues:
            spans.add((kind, start, i))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and not continues):
            start, kind = i, label
    return spans


def tagging_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Word accuracy and entity-level precision, recall and F1 (an entity counts if type and span are exact).

    ``gold`` and ``predicted`` are tag-string sequences, one per sentence, of equal lengths.
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"Need the same, non-zero number of gold and predicted sentences ({len(gold)}, "
                         f"{len(predicted)}).")
    correct = total = found = true = hits = 0
    for g, p in zip(gold, predicted, strict=True):
        if len(g) != len(p):
            raise ValueError(f"A sentence has {len(g)} gold tags but {len(p)} predicted tags.")
        correct += sum(a == b for a, b in zip(g, p, strict=True))
        total += len(g)
        gs, ps = entity_spans(g), entity_spans(p)
        true, found, hits = true + len(gs), found + len(ps), hits + len(gs & ps)
    precision = hits / found if found else 0.0
    recall = hits / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": correct / total, "precision": precision, "recall": recall, "f1": f1}


def entity_word_accuracy(test_tokens: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                         predicted: Sequence[Sequence[str]], train_tokens: Sequence[Sequence[str]]) -> dict:
    """Accuracy on the words of entities (gold tag not ``O``), split by whether the word (lower-cased) occurs
    in the training sentences: ``{"seen": (accuracy, count), "unseen": (accuracy, count)}`` (accuracy None
    when the count is 0). Unseen entities are where a tagger must generalise."""
    known = {w.lower() for words in train_tokens for w in words}
    hits = {"seen": [0, 0], "unseen": [0, 0]}
    for words, g, p in zip(test_tokens, gold, predicted, strict=True):
        if not len(words) == len(g) == len(p):
            raise ValueError(f"A sentence has {len(words)} words, {len(g)} gold and {len(p)} predicted tags.")
        for word, a, b in zip(words, g, p, strict=True):
            if a != "O":
                h = hits["seen" if word.lower() in known else "unseen"]
                h[0] += a == b
                h[1] += 1
    return {k: (c / n if n else None, n) for k, (c, n) in hits.items()}


def lookup_baseline(train_tokens: Sequence[Sequence[str]], train_tags: Sequence[Sequence[str]],
                    test_tokens: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tag each test word with its most frequent tag in the training set (lower-cased, as an uncased model
    sees it); a word never seen in training gets the most frequent tag overall (``O``)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for words, tags in zip(train_tokens, train_tags, strict=True):
        for word, tag in zip(words, tags, strict=True):
            counts[word.lower()][tag] += 1
            overall[tag] += 1
    if not overall:
        raise ValueError("lookup_baseline needs a non-empty training set.")
    default = overall.most_common(1)[0][0]
    best = {w: max(c, key=lambda t: (c[t], t)) for w, c in counts.items()}
    return [[best.get(w.lower(), default) for w in words] for words in test_tokens]


# ----------------------------------------------------------------------------------------------------------
# CoNLL-2003


def load_conll2003(source: str = "conll2003"):
    """CoNLL-2003 English NER as ``(DatasetDict, tag names)``, column ``ner_tags`` renamed to ``tags``.

    ``source``: ``"conll2003"`` (the Hugging Face hub: needs internet access or a cached copy), or a local
    directory in its schema (``tokens``, ``ner_tags``; ``train``/``validation``/``test`` parquet files).

    The original ``conll2003`` repository is a loading script, which ``datasets`` >= 4 no longer runs; this
    tries its Parquet conversion first, then a Parquet copy.
    """
    import datasets

    errors = []
    if source == "conll2003":
        sources = [("eriktks/conll2003", "refs/convert/parquet"), ("lhoestq/conll2003", None)]
    else:
        directory = Path(source).expanduser()
        if not directory.is_dir() or not list(directory.glob("train*.parquet")):
            raise FileNotFoundError(f"{source} is not a directory with train/validation/test parquet files in "
                                    f"CoNLL-2003's schema (tokens, ner_tags).")
        sources = [(str(directory), None)]
    for path, revision in sources:
        try:
            if revision is None and Path(path).is_dir():
                files = {s: str(p) for s in ("train", "validation", "test") for p in Path(path).glob(f"{s}*.parquet")}
                data = datasets.load_dataset("parquet", data_files=files)
            else:
                data = datasets.load_dataset(path, revision=revision)
        except Exception as error:  # no internet, moved repository: try the next source
            errors.append(f"{path}: {type(error).__name__}: {error}")
            continue
        feature = data["train"].features["ner_tags"]
        names = list(getattr(getattr(feature, "feature", None), "names", None) or CONLL2003_TAGS)
        keep = ["tokens", "ner_tags"]
        data = data.remove_columns([c for c in data["train"].column_names if c not in keep])
        return data.rename_column("ner_tags", "tags"), names
    raise RuntimeError("Could not load CoNLL-2003 (" + "; ".join(errors) + "). The 'full' profile downloads it "
                       "from the Hugging Face hub: run once with internet access, or use the 'tiny' profile.")
