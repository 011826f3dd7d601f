"""Real text as documents of sentences, through Hugging Face ``datasets``.

BERT's pretraining data is a list of *documents*, each a list of *sentences*: the next-sentence task needs
to know where a document ends, and its pairs are cut at sentence boundaries. Devlin et al. (2019) wrote it
as text files with one sentence per line and a blank line between documents; :func:`load_documents` reads
that format, and WikiText (whose articles start at a `` = Title = `` heading) from the Hugging Face hub.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

_ABBREVIATIONS = ("mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "fig", "jr", "sr")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(\s+)(?=[\"'(\[]?[A-Z0-9])")
_WIKITEXT_TITLE = re.compile(r"^ ?= [^=].* = ?$")
_WIKITEXT_HEADING = re.compile(r"^ ?(= ){2,}.*( =){2,} ?$")
_WIKITEXT_FIXES = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences: after ``.``, ``!`` or ``?`` followed by a space and a capital letter.

    A simple rule, not a parser: it keeps ``Dr. Smith`` and ``e.g. This`` together (a short list of
    abbreviations) and it is wrong on some initials and quotations, which costs little here: a sentence cut
    in two only moves a possible A/B boundary of a next-sentence pair.
    """
    text = " ".join(text.split())
    if not text:
        return []
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start:match.start(1)]
        last_word = candidate.rsplit(" ", 1)[-1].rstrip(".\"')]").lower()
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue  # "Dr. Smith", "J. Smith"
        sentences.append(candidate.strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def documents_from_lines(lines: Iterable[str], split: bool = True) -> Iterator[list[str]]:
    """BERT's format: a blank line ends a document; every other line is a sentence (or, with ``split``, a
    paragraph cut into sentences by :func:`split_sentences`)."""
    document: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            if document:
                yield document
            document = []
        else:
            document.extend(split_sentences(line) if split else [line])
    if document:
        yield document


def documents_from_texts(texts: Iterable[str | None]) -> Iterator[list[str]]:
    """One document per text (a line of a file, a row of a table), cut into sentences by :func:`split_sentences`;
    empty texts (``None``, blank) are dropped."""
    for text in texts:
        document = split_sentences(text or "")
        if document:
            yield document


def documents_from_wikitext(lines: Iterable[str]) -> Iterator[list[str]]:
    """WikiText's format: an article starts at a `` = Title = `` line; `` = = Section = = `` lines and blank
    lines are dropped; every other line is a paragraph, cut into sentences. WikiText's tokenisation of
    numbers (``1 @,@ 000``, ``2 @.@ 5``, ``well @-@ known``) is undone."""
    document: list[str] = []
    for line in lines:
        if _WIKITEXT_TITLE.match(line):
            if document:
                yield document
            document = []
            continue
        if not line.strip() or _WIKITEXT_HEADING.match(line):
            continue
        for old, new in _WIKITEXT_FIXES:
            line = line.replace(old, new)
        document.extend(split_sentences(line))
    if document:
        yield document


def _looks_like_path(source: str) -> bool:
    return source.endswith(".txt") or source.startswith(("/", ".", "~")) or source.count("/") > 1


_SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "dev"), "test": ("test",)}


def _local_files(path: Path, split: str = "train") -> list[str]:
    """The ``.txt`` files of ``path``; in a directory with one file per split (``train.txt``, ``validation.txt``,
    ``wiki.valid.txt``: a local copy of a dataset such as WikiText), only those of ``split``."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt"))
        if not files:
            raise FileNotFoundError(
                f"The directory {str(path)!r} contains no .txt files. Pass a path to a .txt file or a directory "
                "of .txt files (one sentence per line, a blank line between documents), or a dataset id."
            )

        def split_of(p: Path) -> str | None:
            parts = p.stem.lower().replace("-", ".").replace("_", ".").split(".")
            return next((s for s, names in _SPLIT_NAMES.items() if any(n in parts for n in names)), None)

        by_split = [p for p in files if split_of(p) == split]
        if by_split:
            return [str(p) for p in by_split]
        if any(split_of(p) for p in files) or split != "train":
            raise FileNotFoundError(f"The directory {str(path)!r} has no .txt file for the split {split!r}.")
        return [str(p) for p in files]
    return [str(path)]


def _starts_like_wikitext(files: list[str]) -> bool:
    """Whether the first non-blank line of the first file is a WikiText article title (`` = Title = ``)."""
    with open(files[0], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                return bool(_WIKITEXT_TITLE.match(line))
    return False


def load_documents(
    source: str | os.PathLike,
    split: str = "train",
    text_column: str = "text",
    max_documents: int | None = None,
    config: str | None = None,
    layout: str | None = None,
) -> list[list[str]]:
    """Load a corpus as documents of sentences.

    Args:
        source: a local ``.txt`` file, a directory of ``.txt`` files (read with the ``datasets`` "text"
            builder), or a dataset id of the Hugging Face hub (``"wikitext"``; needs internet access or a
            cached copy).
        split: the split of a hub dataset, or of a local directory with one file per split (``train.txt``,
            ``validation.txt``, ...).
        text_column: the column that holds the text of a hub dataset.
        max_documents: keep only the first ``max_documents`` documents.
        config: the configuration of a hub dataset; for ``"wikitext"`` it defaults to
            ``"wikitext-103-raw-v1"``.
        layout: how lines become documents: ``"lines"`` (BERT's format: one sentence or paragraph per line,
            a blank line between documents), ``"wikitext"`` (articles start at `` = Title = `` headings) or
            ``"rows"`` (every row of a dataset is one document). Default: ``"wikitext"`` when ``source``
            names WikiText, ``"lines"`` for local files, ``"rows"`` for other hub datasets.

    Returns:
        ``documents[d][s]``: sentence ``s`` of document ``d``.
    """
    import datasets

    if max_documents is not None and (not isinstance(max_documents, int) or max_documents < 1):
        raise ValueError(f"max_documents must be a positive integer or None, got {max_documents!r}.")
    source = os.fspath(source)
    path = Path(source).expanduser()
    is_wikitext = "wikitext" in source.lower()
    if path.exists():
        files = _local_files(path, split)
        if all(os.path.getsize(f) == 0 for f in files):
            raise ValueError(
                f"{source!r} contains no text: its files are empty. Pass a corpus with one sentence per line "
                "and a blank line between documents."
            )
        # One row per file (sample_by="document"), so that the end of a file also ends a document.
        dataset = datasets.load_dataset("text", data_files=files, split="train", sample_by="document")
        text_column = "text"
        layout = layout or ("wikitext" if is_wikitext or _starts_like_wikitext(files) else "lines")
        lines = (line for row in dataset for line in [*(row["text"] or "").split("\n"), ""])
    elif _looks_like_path(source):
        raise FileNotFoundError(
            f"No such file or directory: {source!r}. Pass a path to a .txt file or a directory of .txt files "
            "(one sentence per line, a blank line between documents), or a dataset id such as 'wikitext'."
        )
    else:
        if is_wikitext and config is None:
            config = "wikitext-103-raw-v1"
        try:
            dataset = datasets.load_dataset(source, config, split=split)
        except Exception as error:  # offline, unknown id, unknown config...
            raise ValueError(
                f"Could not load {source!r}: there is no such local file or directory, and loading it as a "
                f"dataset id failed ({type(error).__name__}: {error}). Pass a path to a .txt file or a "
                "directory of .txt files, or a dataset id such as 'wikitext' (which needs internet access or "
                "a cached copy)."
            ) from error
        layout = layout or ("wikitext" if is_wikitext else "rows")
        if text_column not in dataset.column_names:
            raise ValueError(
                f"{source!r} has no column {text_column!r}; its columns are {dataset.column_names}. "
                "Pass text_column=<the column that holds the text> (--text-column on the command line)."
            )
        lines = (row[text_column] or "" for row in dataset)

    if layout == "lines":
        docs = documents_from_lines(lines)
    elif layout == "wikitext":
        docs = documents_from_wikitext(lines)
    elif layout == "rows":
        docs = documents_from_texts(lines)
    else:
        raise ValueError(f"Unknown layout {layout!r}; use 'lines', 'wikitext' or 'rows'.")
    documents = []
    for document in docs:
        documents.append(document)
        if max_documents is not None and len(documents) >= max_documents:
            break
    if not documents:
        raise ValueError(
            f"{source!r} contains no text: no non-blank line was found. Pass a corpus with one sentence per "
            "line and a blank line between documents."
        )
    return documents
