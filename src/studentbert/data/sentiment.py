"""The sentiment task: generated reviews, the rule that labels them, a bag-of-words baseline, SST-2.

The generated reviews are written in the corpus's words (:mod:`.lexicon`); their polarity depends on negation
and on contrast (``The soup was not bad.``; ``Although the film was good, the ending was terrible.``). The label
is fully determined by the sentence (:func:`sentiment_rule` recovers it), but not by its bag of words
(:func:`bag_of_words_baseline`). The review grammar (:func:`review`) also writes the corpus's review sentences.
:func:`task_datasets` gives a profile's task (these reviews, or GLUE SST-2) as ``datasets.Dataset``;
:func:`as_task_dataset` checks any ``(text, label)`` data.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from .lexicon import FEMALE_NAMES, INTENSIFIERS, MALE_NAMES, NEGATIVE, POSITIVE, TOPICS, WORD, capitalise

NUM_LABELS = 2


def _clause(rng: random.Random, item: str, positive: bool, negate: bool) -> str:
    """``the <item> was [not] <adjective>``, whose meaning is ``positive``."""
    adjective = rng.choice(POSITIVE if positive != negate else NEGATIVE)
    verb = "was" if rng.random() < 0.75 else "is"
    if negate:
        return f"the {item} {verb} not {adjective}"
    if rng.random() < 0.3:  # intensifiers only without negation: "not very bad" would be ambiguous
        return f"the {item} {verb} {rng.choice(INTENSIFIERS)} {adjective}"
    return f"the {item} {verb} {adjective}"


# Shares of the review forms (see generate_sentiment); tuned so that a bag of words is clearly fooled.
_FORMS = (("plain", 0.5), ("negated", 0.2), ("but", 0.15), ("although", 0.15))


def review(rng: random.Random, items: Sequence[str], positive: bool) -> str:
    """A review whose overall meaning is ``positive``; lower case, no final full stop."""
    u, form = rng.random(), _FORMS[-1][0]
    for name, share in _FORMS:
        if u < share:
            form = name
            break
        u -= share
    if form in ("plain", "negated"):
        return _clause(rng, rng.choice(items), positive, form == "negated")
    first, second = rng.sample(items, 2) if len(items) > 1 else (items[0], items[0])
    a = _clause(rng, first, not positive, rng.random() < 0.5)
    b = _clause(rng, second, positive, rng.random() < 0.5)
    return f"{a} but {b}" if form == "but" else f"although {a}, {b}"


_REVIEW_ITEMS: tuple[str, ...] = tuple(dict.fromkeys(i for t in TOPICS for i in t.items))


NEGATED_FRAMES = ("{name} did not think that", "it is not true that", "{name} did not feel that")
"""The frames that deny a review: ``Anna did not think that the soup was good.`` is a negative review."""


def generate_sentiment(num_examples: int, seed: int = 0, negated_frames: float = 0.0) -> list[tuple[str, int]]:
    """Labelled reviews: ``(sentence, label)`` with label 1 = positive, 0 = negative; exactly balanced.

    A review is one of four forms (shares 50/20/15/15%), optionally introduced by ``<Name> said that`` or
    ``According to <Name>,``:

    * plain: ``the soup was very good`` (the adjective's polarity),
    * negated: ``the soup was not bad`` (the opposite of the adjective's polarity),
    * contrast: ``the film was good but the ending was not great`` and
      ``although the film was good, the ending was terrible``: the clause after *but* / the main clause
      decides, and the two clauses always disagree.

    A share ``negated_frames`` (default 0: none) of the reviews is instead a plain clause inside a frame that
    denies it (:data:`NEGATED_FRAMES`): ``Anna did not think that the soup was good.`` is negative. The frames
    make *not* ambiguous: in ``the soup was not bad`` it flips the adjective, in a frame the whole clause, and
    in the first clause of a contrast nothing at all, so a model has to find the scope of each *not*. With 0.15
    and 650 training examples (the ``tiny`` profile's task) the fine-tuned tiny teacher no longer solves the
    task: it lands between 0.80 and 0.92, how far depending on the fine-tuning seed; with 1,000 examples it
    solves it again (``benchmarks/bench_task_seeds.py``, chapter 7). With 0 the examples are those of the four
    forms alone.

    Every example is fully determined by its text (:func:`sentiment_rule` gets 100%), but each word
    (including *not*) appears about equally often in positive and negative examples, so a bag-of-words
    classifier can only use the plain reviews (:func:`bag_of_words_baseline`).
    """
    if not isinstance(num_examples, int) or num_examples < 0:
        raise ValueError(f"num_examples must be a non-negative integer, got {num_examples!r}.")
    if not 0.0 <= negated_frames <= 1.0:
        raise ValueError(f"negated_frames is a share of the reviews, between 0 and 1, got {negated_frames!r}.")
    rng = random.Random(f"sentiment-{seed}")
    labels = [i % 2 for i in range(num_examples)]
    rng.shuffle(labels)
    examples = []
    for label in labels:
        if negated_frames and rng.random() < negated_frames:  # a frame denying a clause of the opposite polarity
            frame = rng.choice(NEGATED_FRAMES).format(name=rng.choice(FEMALE_NAMES + MALE_NAMES))
            clause = _clause(rng, rng.choice(_REVIEW_ITEMS), not label, False)
            examples.append((capitalise(f"{frame} {clause}."), label))
            continue
        body = review(rng, _REVIEW_ITEMS, bool(label))
        k = rng.random()
        name = rng.choice(FEMALE_NAMES + MALE_NAMES)
        if k < 0.3:
            text = f"{body}."
        elif k < 0.85:
            text = f"{name} {rng.choice(('said', 'thought', 'felt'))} that {body}."
        else:
            text = f"According to {name}, {body}."
        examples.append((capitalise(text), label))
    return examples


_POLARITY = {**dict.fromkeys(POSITIVE, 1), **dict.fromkeys(NEGATIVE, 0)}


_DENIAL = re.compile("^(?:" + "|".join(f.format(name=r"\w+") for f in NEGATED_FRAMES) + ") ")


def sentiment_rule(text: str) -> int:
    """The label of a review of :func:`generate_sentiment`, computed by the rule that defines it.

    Take the deciding clause (after *but*; after the comma that ends an *although* clause; otherwise the only
    clause), find its adjective, and flip its polarity if the clause contains *not*; flip it once more if the
    review starts with a frame that denies it (:data:`NEGATED_FRAMES`).
    """
    s = text.lower().rstrip(".")
    denied = _DENIAL.match(s)
    if denied:
        s = s[denied.end():]
    if " but " in s:
        s = s.split(" but ", 1)[1]
    elif "although " in s:
        s = s.split("although ", 1)[1].split(", ", 1)[1]
    words = WORD.findall(s)
    polarity = [_POLARITY[w] for w in words if w in _POLARITY]
    if len(polarity) != 1:
        raise ValueError(f"Not a review of generate_sentiment: {text!r}.")
    return polarity[0] ^ ("not" in words) ^ bool(denied)


def review_form(text: str) -> str:
    """Which form a review of :func:`generate_sentiment` has: ``"denied"`` (inside a frame of
    :data:`NEGATED_FRAMES`), ``"but"``, ``"although"``, ``"negated"`` (one clause with *not*) or ``"plain"``."""
    s = text.lower()
    if _DENIAL.match(s):
        return "denied"
    if " but " in s:
        return "but"
    if "although " in s:
        return "although"
    return "negated" if "not" in WORD.findall(s) else "plain"


def bag_of_words_baseline(
    train: Sequence[tuple[str, int]], test: Sequence[tuple[str, int]], max_n: int = 1,
    steps: int = 300, weight_decay: float = 1e-4,
) -> float:
    """Test accuracy of a logistic regression on the bag of words (word n-grams up to ``max_n``).

    The features are binary: 1 if an n-gram of the training vocabulary occurs in the sentence. The model is
    fitted by full-batch L-BFGS on the cross-entropy with a small L2 penalty; pure torch, deterministic.

    Args:
        train, test: ``(text, label)`` pairs with labels 0/1.
        max_n: 1 for words only, 2 to add word pairs (which capture "not good" but not "but").
    """
    import torch

    if not train or not test:
        raise ValueError("bag_of_words_baseline needs non-empty train and test sets of (text, label) pairs.")

    def grams(text: str) -> set[str]:
        words = WORD.findall(text.lower())
        return {" ".join(words[i:i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1)}

    train_grams = [grams(t) for t, _ in train]
    vocab = {g: i for i, g in enumerate(sorted(set().union(*train_grams)))}

    def features(all_grams: list[set[str]]) -> torch.Tensor:
        x = torch.zeros(len(all_grams), len(vocab))
        for r, gs in enumerate(all_grams):
            cols = [vocab[g] for g in gs if g in vocab]
            x[r, cols] = 1.0
        return x

    x_train = features(train_grams)
    y_train = torch.tensor([float(y) for _, y in train])
    x_test = features([grams(t) for t, _ in test])
    y_test = torch.tensor([float(y) for _, y in test])
    w = torch.zeros(len(vocab), requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = x_train @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_train)
        loss = loss + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        predictions = (x_test @ w + b) > 0
    return (predictions.float() == y_test).float().mean().item()


def task_datasets(profile):
    """The profile's downstream task as ``(train, test)`` ``datasets.Dataset`` with columns ``text`` and ``label``.

    * ``tiny`` (``profile.task.name == "generated-sentiment"``): the generated reviews of
      :func:`generate_sentiment`, ``profile.task.num_train`` training examples (seed
      ``profile.data.seed``) and ``profile.task.num_test`` test examples (seed ``profile.data.seed + 1``), with
      ``profile.task.negated_frames`` of them in a denying frame. Short
      reviews can come out of both seeds; test sentences that also occur in the training set are dropped
      (and replaced by further generated ones), so that the test set measures generalisation.
    * ``sst2``: GLUE SST-2 (Socher et al., 2013) from the Hugging Face hub, ``train`` and ``validation`` (the
      GLUE test labels are hidden); needs internet access or a cached copy. A local directory in GLUE's
      schema serves the same way. ``num_train``/``num_test`` > 0 keep the first that many examples.
    """
    import datasets

    task = profile.task
    if task.name == "generated-sentiment":
        if task.num_train < 1 or task.num_test < 1:
            raise ValueError(
                f"The generated task needs num_train >= 1 and num_test >= 1, got {task.num_train} and "
                f"{task.num_test}: set profile.task.num_train / num_test.")
        train = generate_sentiment(task.num_train, seed=profile.data.seed, negated_frames=task.negated_frames)
        seen = {text for text, _ in train}
        extra = task.num_test // 5 + 20
        while True:
            candidates = generate_sentiment(task.num_test + extra, seed=profile.data.seed + 1,
                                            negated_frames=task.negated_frames)
            test = [(t, y) for t, y in candidates if t not in seen][: task.num_test]
            if len(test) == task.num_test:
                break
            extra *= 2

        def as_dataset(pairs):
            return datasets.Dataset.from_dict({"text": [t for t, _ in pairs], "label": [y for _, y in pairs]})

        return as_dataset(train), as_dataset(test)
    if task.name == "sst2" or Path(task.name).expanduser().is_dir():
        glue = _load_sst2(task.name)
        train, test = glue["train"], glue["validation"]
        if task.num_train:
            train = train.select(range(min(task.num_train, len(train))))
        if task.num_test:
            test = test.select(range(min(task.num_test, len(test))))
        keep = ["text", "label"]
        train, test = (d.rename_column("sentence", "text") for d in (train, test))
        train, test = (d.remove_columns([c for c in d.column_names if c not in keep]) for d in (train, test))
        return train, test
    raise ValueError(f"Unknown task {task.name!r}: use 'generated-sentiment' (offline) or 'sst2' (GLUE).")


def _load_sst2(source: str):
    """GLUE SST-2 from the hub (``"sst2"``), or a local directory in GLUE's schema (``sentence``, ``label``,
    ``idx``) with ``train`` and ``validation`` files in parquet, CSV or JSON Lines."""
    import datasets

    if source != "sst2":
        directory = Path(source).expanduser()
        files = {split: sorted(p for p in directory.iterdir() if p.stem.startswith(split)
                               and p.suffix in (".parquet", ".csv", ".jsonl", ".json"))
                 for split in ("train", "validation")}
        missing = [split for split, found in files.items() if not found]
        if missing:
            raise FileNotFoundError(f"{directory} has no {' or '.join(missing)} file: a local SST-2 needs "
                                    f"train.parquet and validation.parquet (or .csv / .jsonl) in GLUE's schema.")
        builder = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}[files["train"][0].suffix]
        data = datasets.load_dataset(builder, data_files={k: [str(p) for p in v] for k, v in files.items()})
        for split in ("train", "validation"):
            absent = {"sentence", "label"} - set(data[split].column_names)
            if absent:
                raise ValueError(f"The {split} file of {directory} lacks the column(s) {sorted(absent)}: GLUE's "
                                 f"SST-2 schema is sentence, label, idx.")
        return data
    try:
        return datasets.load_dataset("glue", "sst2")  # fetches the sst2 configuration's files only
    except Exception as error:  # no internet, no cache: say what is needed
        raise RuntimeError(
            f"Could not load GLUE SST-2 ({type(error).__name__}: {error}). The 'full' profile downloads it "
            f"from the Hugging Face hub: run once with internet access (it is cached afterwards), pass a local "
            f"copy (overrides={{'task.name': DIR}}), or use the 'tiny' profile, whose task is generated "
            f"offline.") from error


def as_task_dataset(data, what: str, num_labels: int | None = NUM_LABELS):
    """A ``datasets.Dataset`` with ``text`` and ``label`` (and ``text_pair``, if the Dataset has one) from a
    Dataset or a sequence of ``(text, label)``; labels are checked to be ids in ``0..num_labels-1``
    (:func:`studentbert.data.labelled.encode_labels`), unless ``num_labels`` is None (the caller maps them)."""
    import datasets

    from .labelled import encode_labels

    if isinstance(data, datasets.Dataset):
        missing = {"text", "label"} - set(data.column_names)
        if missing:
            raise ValueError(
                f"The {what} set has columns {data.column_names}; it needs 'text' and 'label' (rename the "
                f"sentence column to 'text', e.g. dataset.rename_column('sentence', 'text')).")
        dataset = data
    elif isinstance(data, Sequence) and not isinstance(data, str):
        pairs = list(data)
        if any(not (isinstance(p, Sequence) and len(p) == 2 and isinstance(p[0], str)) for p in pairs):
            raise TypeError(f"The {what} set must be a datasets.Dataset or a list of (text, label) pairs.")
        labels = [y for _, y in pairs]
        dataset = datasets.Dataset.from_dict({"text": [t for t, _ in pairs], "label": labels})
    else:
        raise TypeError(
            f"The {what} set must be a datasets.Dataset with columns 'text' and 'label' or a list of "
            f"(text, label) pairs, got {type(data).__name__}.")
    if len(dataset) == 0:
        raise ValueError(f"The {what} set is empty: there is nothing to {'train on' if what == 'training' else 'evaluate'}.")
    if num_labels is None:
        return dataset
    labels = encode_labels(dataset["label"], what, None, num_labels)  # a missing, fractional or outside label
    if labels != list(dataset["label"]):  # whole-number floats (1.0) as ints
        dataset = dataset.remove_columns("label").add_column("label", labels)
    return dataset
