"""The user's own corpus for pretraining and distillation: local files, directories and globs, or a datasets id.

:func:`load_corpus` reads what ``--corpus`` names and returns documents of sentences, the input of
:func:`~studentbert.data.build_pretraining_examples` and :func:`~studentbert.data.segments.build_segment_examples`:

* a ``.txt`` file: every non-blank line is the text of one document;
* a ``.jsonl``/``.json``, ``.csv``/``.tsv`` or ``.parquet`` file: every row's ``text_column`` is the text of one
  document (read as :func:`studentbert.data.labelled.load_labelled` reads a labelled file);
* a directory: every such file in it and below, in sorted order; a glob (``notes/*.txt``): every file it matches;
* anything else: a ``datasets`` id (or its local copy), read by :func:`~studentbert.data.text.load_documents`
  (its ``config``, ``split`` and ``text_column``).

Each text is cut into sentences by :func:`~studentbert.data.text.split_sentences` (through
:func:`~studentbert.data.text.documents_from_texts`), and blank texts are dropped. :func:`split_heldout` then sets
aside a seeded handful of documents for evaluation.

The whole corpus is read into memory, as the profile's corpus is. A corpus larger than memory is streamed instead
(``--streaming``): :class:`studentbert.data.streaming.TextStream` reads the files that :func:`corpus_files`
resolves, window by window, and cuts their texts into documents as :func:`load_corpus` does.
"""

from __future__ import annotations

import glob
import os
import random
from collections.abc import Sequence
from pathlib import Path

from .labelled import FILE_FORMATS, read_table
from .text import documents_from_texts, load_documents

TEXT_SUFFIXES = (".txt",)
"""Files read as one text per line."""
CORPUS_SUFFIXES = (*TEXT_SUFFIXES, *FILE_FORMATS)
"""Every file suffix that a corpus may hold: ``.txt`` and the tables of :data:`studentbert.data.labelled.FILE_FORMATS`."""
_KINDS = ".txt (one text per line), .jsonl/.json, .csv/.tsv or .parquet"


def _is_glob(source: str) -> bool:
    return any(c in source for c in "*?[")


def _looks_local(source: str) -> bool:
    """A path rather than a datasets id: a known suffix, a leading ``/``, ``.`` or ``~``, or more than one ``/``."""
    return (Path(source).suffix.lower() in CORPUS_SUFFIXES or source.startswith(("/", ".", "~"))
            or source.count("/") > 1)


def _directory_files(path: Path) -> list[Path]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"The corpus directory {path} holds no {_KINDS} file: pass a directory of such "
                                f"files, the files themselves, or a glob.")
    return files


def corpus_files(source: str | os.PathLike) -> list[Path] | None:
    """The local files that one ``--corpus`` source names (sorted), or None for a datasets id.

    Raises FileNotFoundError for a glob that matches nothing, a missing file and a directory without corpus
    files, and ValueError for a file of another format.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if _is_glob(text) and not path.exists():
        matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise FileNotFoundError(f"--corpus {text!r} matches no file: check the pattern and the directory it "
                                    f"names.")
        files = [f for m in matches for f in (_directory_files(m) if m.is_dir() else [m])]
    elif path.is_dir():
        files = _directory_files(path)
    elif path.is_file():
        files = [path]
    elif _looks_local(text):
        raise FileNotFoundError(f"No such corpus file or directory: {text}. Pass existing {_KINDS} files, "
                                f"directories or globs, or a datasets id (with --corpus-config and --split).")
    else:
        return None
    for f in files:
        if f.suffix.lower() not in CORPUS_SUFFIXES:
            raise ValueError(f"The corpus file {f} is not {_KINDS}: convert it, or give it the suffix of its format.")
    return files


def _file_texts(path: Path, text_column: str) -> list[str | None]:
    """The texts of one file: its lines (``.txt``) or its ``text_column`` (a table)."""
    if path.suffix.lower() in TEXT_SUFFIXES:
        try:
            return path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise ValueError(f"The corpus file {path} is not UTF-8 text ({error.reason} at byte {error.start}): "
                             f"convert it to UTF-8.") from None
    data = read_table(path, "corpus")
    if text_column not in data:
        raise ValueError(f"The corpus file {path} has no column {text_column!r} (its columns: "
                         f"{', '.join(map(str, data)) or 'none'}): pass --text-column with the name of the column "
                         f"that holds the text.")
    return [None if v is None else str(v) for v in data[text_column]]


def load_corpus(sources: str | os.PathLike | Sequence[str | os.PathLike], text_column: str = "text",
                config: str | None = None, split: str = "train") -> list[list[str]]:
    """The documents of every source, in order; ``documents[d][s]`` is sentence ``s`` of document ``d``.

    Args:
        sources: files, directories, globs or datasets ids (see the module's docstring); a file named twice is
            read once.
        text_column: the column of the texts in a table or a dataset.
        config, split: a datasets id's configuration and split.

    Raises:
        FileNotFoundError, ValueError: a missing source, a column that is not there, or no text at all.
    """
    sources = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    if not sources:
        raise ValueError("No corpus given: pass --corpus with files, directories, globs or a datasets id.")
    documents: list[list[str]] = []
    seen: set[Path] = set()
    for source in sources:
        files = corpus_files(source)
        if files is None:
            documents.extend(load_documents(os.fspath(source), split=split, text_column=text_column, config=config))
            continue
        for f in files:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                documents.extend(documents_from_texts(_file_texts(f, text_column)))
    if not documents:
        raise ValueError(f"The corpus {' '.join(map(os.fspath, sources))} has no text: every line and row is blank. "
                         f"Pass files with one text per line (.txt) or rows whose {text_column!r} column holds text.")
    return documents


def split_heldout(documents: Sequence[list[str]], count: int | None = None, at_most: int = 300,
                  seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """``(training documents, held-out documents)``: ``count`` documents drawn with ``seed`` are held out.

    ``count`` None holds out a tenth of the documents (at least 1, at most ``at_most``). The order of both parts
    is the corpus's.
    """
    n = len(documents)
    if n < 2:
        raise ValueError(f"The corpus has {n} document: at least 2 are needed, one held out for evaluation. Add "
                         f"texts (one per line of a .txt file, one per row of a table).")
    if count is None:
        count = min(at_most, max(1, n // 10))
    if not 1 <= count < n:
        raise ValueError(f"--heldout-documents {count} must be between 1 and {n - 1}: the corpus has {n} documents "
                         f"and training needs at least one.")
    held = set(random.Random(seed).sample(range(n), count))
    return ([list(d) for i, d in enumerate(documents) if i not in held],
            [list(d) for i, d in enumerate(documents) if i in held])


def corpus_label(sources: Sequence[str | os.PathLike], text_column: str = "text", config: str | None = None,
                 split: str = "train") -> str:
    """One string naming the corpus as the user gave it, for the run's settings (a resume compares it)."""
    return f"{' '.join(map(os.fspath, sources))} [text_column={text_column}, config={config}, split={split}]"
