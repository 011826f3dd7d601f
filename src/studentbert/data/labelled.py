"""Labelled examples from the user's files or a ``datasets`` id: columns, the label mapping, validation.

:func:`load_labelled` reads a training set (and a validation set) for a sentence classifier, from CSV, JSON
Lines (or a JSON array) or parquet files, or from a ``datasets`` id (or a local dataset directory) and its
splits, and returns a :class:`LabelledTask` whose datasets have the columns ``text``, optionally
``text_pair`` (sentence-pair tasks, MNLI/QQP style) and ``label`` (class ids ``0..num_labels-1``).

Labels are checked row by row, with one-line errors that name the row and the fix:

* a missing label (empty cell, ``None``, ``NaN``) is refused;
* integers are class ids; floats that are whole numbers (``1.0``, as pandas reads an integer column with a
  gap) count as integers; other floats (``0.5``) are refused: a classifier needs classes, not scores;
* strings are class *names*, mapped to ids in sorted order of the distinct names of the training set
  (``["negative", "neutral", "positive"] -> 0, 1, 2``): deterministic, whatever the order of the rows. A
  validation label that the training set never uses is refused. ``label_names`` gives the mapping instead;
* ids outside ``0..num_labels-1`` are refused, and so is a training set with a single class.

The names (for integer labels: a ``datasets.ClassLabel``'s names, else ``LABEL_0``, ``LABEL_1``... as
``transformers`` names them) become the model's ``id2label``/``label2id``, so that a pipeline prints them.

:func:`load_unlabeled` reads unlabelled in-domain text for task distillation (``finetune --unlabeled``): the
same text column(s), no label.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from pathlib import Path

FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
"""File suffixes that :func:`load_labelled` reads, and how."""


@dataclasses.dataclass
class LabelledTask:
    """A classification task: ``train`` and ``validation`` datasets (``text``, [``text_pair``], ``label``) and
    the names of the ``num_labels`` classes (``label_names[i]`` is class ``i``)."""

    train: object
    validation: object
    label_names: list[str]
    num_labels: int

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def read_table(path: Path, what: str) -> dict[str, list]:
    """The columns of a CSV/TSV, JSON Lines/JSON or parquet file, as lists (missing cells as None)."""
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"No such {what} file: {path}. Pass an existing CSV, JSON Lines or parquet file.")
    kind = FILE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"The {what} file {path} is not CSV (.csv, .tsv), JSON Lines (.jsonl, .json) or parquet "
                         f"(.parquet): convert it, or give it the suffix of its format.")
    try:
        if kind == "csv":  # "NA" or "null" in a text is text; only an empty cell is missing
            frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", keep_default_na=False,
                                na_values=[""])
        elif kind == "json":
            try:
                frame = pd.read_json(path, lines=True, dtype=False)
            except ValueError:
                frame = pd.read_json(path, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise ValueError(f"Could not read the {what} file {path} as {kind} ({type(error).__name__}: "
                         f"{' '.join(str(error).split())[:200]}).") from None
    return {str(c): [None if _is_missing(v) else v for v in frame[c].tolist()] for c in frame.columns}


def _texts(values: list, where: str, role: str, column: str) -> list[str]:
    """``values`` as strings; a missing one is refused, naming its row in ``where`` (e.g. "the training set")."""
    texts = []
    for row, value in enumerate(values):
        if _is_missing(value):
            raise ValueError(f"Row {row + 1} of {where} has no {role} (column {column!r} is empty): fill it in or "
                             f"drop the row.")
        texts.append(value if isinstance(value, str) else str(value))
    return texts


def _columns(data: dict[str, list], what: str, columns: dict[str, str | None]) -> dict[str, list]:
    """``{"text": ..., "text_pair": ..., "label": ...}`` from the user's column names, with texts checked."""
    out = {}
    for role, name in columns.items():
        if name is None:
            continue
        if name not in data:
            flag = "--" + role.replace("_", "-") + "-column"
            raise ValueError(f"The {what} set has no column {name!r} (its columns: {', '.join(map(str, data))}): "
                             f"pass {flag} with the name of the {role.replace('_', ' ')} column.")
        out[role] = list(data[name])
    for role in ("text", "text_pair"):
        if role in out:
            out[role] = _texts(out[role], f"the {what} set", role, columns[role])
    if not out["label"]:
        raise ValueError(f"The {what} set is empty: there is nothing to "
                         f"{'train on' if what == 'training' else 'evaluate'}.")
    return out


def label_kind(labels: Sequence, what: str, column: str = "label") -> str:
    """``"id"`` (integers, or whole-number floats) or ``"name"`` (strings); one-line errors otherwise."""
    kinds = set()
    for row, y in enumerate(labels):
        if _is_missing(y):
            raise ValueError(f"Row {row + 1} of the {what} set has no label (column {column!r} is empty or None): "
                             f"label it or drop the row.")
        if isinstance(y, str):
            kinds.add("name")
        elif isinstance(y, numbers.Integral):
            kinds.add("id")
        elif isinstance(y, numbers.Real) and float(y).is_integer():
            kinds.add("id")
        elif isinstance(y, numbers.Real):
            raise ValueError(f"Row {row + 1} of the {what} set has the label {y!r}, which is not a class: labels "
                             f"must be class ids (0, 1, 2...) or class names, not scores.")
        else:
            raise ValueError(f"Row {row + 1} of the {what} set has the label {y!r} ({type(y).__name__}): labels "
                             f"must be class ids (0, 1, 2...) or class names.")
    if len(kinds) > 1:
        raise ValueError(f"The {what} set's labels mix class names (strings) and class ids (numbers): use one "
                         f"or the other in column {column!r}.")
    return kinds.pop()


def encode_labels(labels: Sequence, what: str, label2id: dict[str, int] | None, num_labels: int,
                  column: str = "label") -> list[int]:
    """Class ids for ``labels`` (ids, whole-number floats, or names looked up in ``label2id``), checked against
    ``num_labels``."""
    kind = label_kind(labels, what, column)
    if kind == "name":
        if label2id is None:
            raise ValueError(f"The {what} set has class names (strings) where class ids are expected: use the "
                             f"same kind of label as the training set (load_labelled maps names to ids).")
        unknown = sorted({y for y in labels if y not in label2id})
        if unknown:
            raise ValueError(f"The {what} set has labels {unknown[:5]} that the training set does not use (its "
                             f"classes: {sorted(label2id)[:10]}): every class must have training examples.")
        return [label2id[y] for y in labels]
    ids = [int(y) for y in labels]
    bad = sorted({y for y in ids if not 0 <= y < num_labels})
    if bad:
        row = next(i for i, y in enumerate(ids) if y in bad)
        raise ValueError(f"The {what} set has labels {bad[:5]} (first at row {row + 1}) outside 0..{num_labels - 1} "
                         f"(num_labels={num_labels}): pass --num-labels with the number of classes, or fix the "
                         f"labels (GLUE's hidden test labels are -1: evaluate on the validation split).")
    return ids


def _label_names(train_labels: list, num_labels: int | None, label_names: Sequence[str] | None,
                 class_names: Sequence[str] | None) -> tuple[list[str], dict[str, int] | None]:
    """The class names and (for string labels) the name -> id mapping."""
    kind = label_kind(train_labels, "training")
    if kind == "name":
        names = sorted(set(train_labels)) if label_names is None else list(label_names)
        missing = sorted(set(train_labels) - set(names))
        if missing:
            raise ValueError(f"The training labels {missing[:5]} are not in label_names {names[:10]}.")
    else:
        largest = max(int(y) for y in train_labels)
        n = num_labels if num_labels is not None else largest + 1
        names = list(label_names or class_names or [f"LABEL_{i}" for i in range(n)])
    if num_labels is not None and len(names) > num_labels:
        raise ValueError(f"The training set has {len(names)} classes ({names[:10]}) but --num-labels is "
                         f"{num_labels}: pass --num-labels {len(names)} (or leave it out).")
    if num_labels is not None and len(names) < num_labels:
        names += [f"LABEL_{i}" for i in range(len(names), num_labels)]
    if len(set(names)) != len(names):
        raise ValueError(f"The label names {names[:10]} are not distinct.")
    return names, ({name: i for i, name in enumerate(names)} if kind == "name" else None)


def _from_source(source, what: str, split: str, dataset_config: str | None) -> tuple[dict[str, list], list | None]:
    """A file, a ``datasets.Dataset``, or a ``datasets`` id's ``split``: its columns and ClassLabel names."""
    import datasets

    if isinstance(source, datasets.Dataset):
        dataset = source
    else:
        path = Path(source).expanduser()
        if path.suffix.lower() in FILE_FORMATS or path.is_file() or (
                str(source).startswith((".", "/", "~")) and not path.exists()):
            return read_table(path, what), None
        try:
            dataset = datasets.load_dataset(str(source), dataset_config, split=split)
        except ValueError as error:  # an unknown split or configuration
            raise ValueError(f"Could not load split {split!r} of the dataset {source!r}: "
                             f"{' '.join(str(error).split())[:300]}") from None
        except Exception as error:  # offline, no such dataset
            raise FileNotFoundError(
                f"No such file, and no dataset {source!r} on the hub or in the cache ({type(error).__name__}): pass "
                f"an existing CSV, JSON Lines or parquet file, or a datasets id such as glue with "
                f"--dataset-config sst2.") from None
    names = [getattr(f, "names", None) for f in dataset.features.values()]
    class_names = {c: n for c, n in zip(dataset.features, names, strict=True) if n}
    return {c: dataset[c] for c in dataset.column_names}, class_names or None


def load_labelled(
    train,
    validation=None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    num_labels: int | None = None,
    dataset_config: str | None = None,
    train_split: str = "train",
    validation_split: str = "validation",
    label_names: Sequence[str] | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> LabelledTask:
    """Read and check a labelled task; see the module's docstring for the label rules.

    Args:
        train: a CSV/TSV, JSON Lines/JSON or parquet file, a ``datasets.Dataset``, or a ``datasets`` id (or
            local dataset directory) whose ``train_split`` (and ``validation_split``) are read.
        validation: the validation file or Dataset. None: a ``datasets`` id's ``validation_split``; for a file,
            a seeded ``validation_fraction`` of the training rows (at least one) is held out.
        text_column, text_pair_column, label_column: the columns to read (``text_pair_column`` None: single
            sentences).
        num_labels: the number of classes; None: the number of names, or the largest id + 1.
        dataset_config: the ``datasets`` configuration (``"sst2"`` of ``"glue"``).
        label_names: the class names, in id order, instead of the sorted names of the training set.
        validation_fraction, seed: the held-out share when there is no validation set, and its shuffle.

    Returns:
        A :class:`LabelledTask` whose datasets have ``text``, [``text_pair``] and integer ``label`` columns.
    """
    import datasets

    if num_labels is not None and (not isinstance(num_labels, int) or num_labels < 2):
        raise ValueError(f"num_labels must be an integer >= 2, got {num_labels!r}.")
    columns = {"text": text_column, "text_pair": text_pair_column, "label": label_column}
    data, class_names = _from_source(train, "training", train_split, dataset_config)
    train_cols = _columns(data, "training", columns)
    is_hub = not isinstance(train, datasets.Dataset) and not (Path(train).expanduser().suffix.lower() in FILE_FORMATS
                                                             or Path(train).expanduser().is_file())
    if validation is None and is_hub:
        validation = train
        val_cols = _columns(_from_source(train, "validation", validation_split, dataset_config)[0], "validation",
                            columns)
    elif validation is not None:
        val_cols = _columns(_from_source(validation, "validation", validation_split, dataset_config)[0],
                            "validation", columns)
    else:
        val_cols = None
    names, label2id = _label_names(train_cols["label"], num_labels,
                                   label_names, (class_names or {}).get(label_column))
    n = len(names)
    train_cols["label"] = encode_labels(train_cols["label"], "training", label2id, n, label_column)
    used = sorted(set(train_cols["label"]))
    if len(used) < 2:
        raise ValueError(f"The training labels (column {label_column!r}) have one class only ({names[used[0]]!r}): "
                         f"a classifier needs examples of at least two classes. Check --label-column.")
    if val_cols is None:
        import random

        rows = list(range(len(train_cols["label"])))
        random.Random(seed).shuffle(rows)
        held = set(rows[: max(1, round(validation_fraction * len(rows)))])
        if len(held) >= len(rows):
            raise ValueError("The training set has a single row: pass --validation, or more training rows.")
        val_cols = {k: [v[i] for i in sorted(held)] for k, v in train_cols.items()}
        train_cols = {k: [v[i] for i in range(len(v)) if i not in held] for k, v in train_cols.items()}
    else:
        val_cols["label"] = encode_labels(val_cols["label"], "validation", label2id, n, label_column)
    return LabelledTask(datasets.Dataset.from_dict(train_cols), datasets.Dataset.from_dict(val_cols), names, n)


def load_unlabeled(source, text_column: str = "text", text_pair_column: str | None = None):
    """Unlabelled texts for task distillation (``finetune --unlabeled FILE``), as a ``datasets.Dataset`` with the
    columns ``text`` and (``text_pair_column`` given) ``text_pair``.

    ``source``: a CSV/TSV, JSON Lines/JSON or parquet file, or a ``datasets.Dataset``, read with the training
    set's text column(s); a label column, if there is one, is ignored (the teacher labels these rows). A missing
    column, an empty text and an empty file are one-line errors that name the file.
    """
    import datasets

    if isinstance(source, datasets.Dataset):
        data, what = {c: list(source[c]) for c in source.column_names}, "unlabelled dataset"
    else:
        path = Path(source).expanduser()
        data, what = read_table(path, "unlabelled"), f"unlabelled file {path}"
    out = {}
    for role, name in (("text", text_column), ("text_pair", text_pair_column)):
        if name is None:
            continue
        if name not in data:
            flag = "--" + role.replace("_", "-") + "-column"
            raise ValueError(f"The {what} has no column {name!r} (its columns: {', '.join(map(str, data))}): it "
                             f"needs the training set's {role.replace('_', ' ')} column ({flag} {name}); rename "
                             f"its column, or pass {flag} with a name that both files use.")
        out[role] = _texts(data[name], f"the {what}", role, name)
    if not out["text"]:
        raise ValueError(f"The {what} has no rows: pass a file of unlabelled texts, or leave out --unlabeled.")
    return datasets.Dataset.from_dict(out)
