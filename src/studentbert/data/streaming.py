"""A corpus larger than memory, streamed: single-segment examples read lazily from local files, resumable exactly.

:class:`TextStream` reads ``--corpus`` files (:func:`stream_files`) one window at a time: the next ``window``
records (lines of a ``.txt``, lines of a ``.jsonl``, rows of a ``.csv``/``.tsv``/``.parquet``), cut into documents
as :func:`~studentbert.data.corpora.load_corpus` cuts them, tokenized in one call of the fast tokenizer and packed
into the ``[CLS] ... [SEP]`` examples that :func:`~studentbert.data.segments.build_segment_examples` makes (the same
packing rule, written here per document). The window's examples are shuffled by a permutation drawn from
``(seed, epoch, window)``; the windows follow the files' order; at the end of the last file the next epoch
begins. The first ``heldout_documents`` documents are set aside for evaluation (:attr:`TextStream.heldout`) and
never trained on. Memory holds one window, whatever the size of the corpus.

Its position is a few numbers (:meth:`TextStream.state_dict`: epoch, window, file, the byte offset or row of the
window's start, the examples already taken from it), saved in the checkpoint by
:class:`~studentbert.training.Trainer`: a resume seeks to the window's start, rebuilds it (the same records, the
same permutation) and skips what was taken, so an interrupted run ends with the weights of an uninterrupted one.

Why not ``datasets`` streaming (``load_dataset(..., streaming=True)``)? Its ``IterableDataset.state_dict`` (5.x)
resumes a shard by counting examples from the shard's start (a whole 1 GB file is re-read), and its docstring says
that ``shuffle()``'s buffer is lost on resume and refilled with new data: not the same examples, so not the same
weights. Byte offsets and a seeded window make both cheap and exact.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .corpora import TEXT_SUFFIXES, corpus_files
from .segments import pack_segments
from .text import documents_from_texts
from .tokenizer import check_tokenizer

Position = tuple[int, int]
"""``(file index, byte offset)`` of a line-based file (``.txt``, ``.jsonl``/``.json``) or ``(file index, row)``."""
LINE_SUFFIXES = (*TEXT_SUFFIXES, ".jsonl", ".json")
DEFAULT_WINDOW = 4096


def stream_files(sources: Sequence[str | os.PathLike]) -> list[Path]:
    """The local files that ``--corpus`` names, each once, in order; a datasets id is refused (ValueError)."""
    if not sources:
        raise ValueError("--streaming reads the --corpus files: pass --corpus with .txt, .jsonl, .csv or .parquet "
                         "files, directories or globs.")
    files, seen = [], set()
    for source in sources:
        found = corpus_files(source)
        if found is None:
            raise ValueError(f"--streaming reads local files, and --corpus {os.fspath(source)} is a datasets id: save "
                             f"its text as .jsonl or .txt files (dataset.to_json('corpus.jsonl')) and pass them, or "
                             f"drop --streaming.")
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                files.append(f)
    return files


def fingerprint(files: Sequence[Path], blocks: int = 16, block_size: int = 1 << 16) -> dict[str, str]:
    """``{resolved path: "SIZE bytes, sha1 HEX"}``, the hash of ``blocks`` evenly spread blocks: cheap on 1 GB,
    and a file that grew, shrank or changed in a sampled block no longer matches."""
    out = {}
    for path in files:
        size, h = path.stat().st_size, hashlib.sha1()
        with open(path, "rb") as f:
            for i in range(blocks):
                f.seek(max(0, size - block_size) * i // max(1, blocks - 1))
                h.update(f.read(block_size))
        out[str(path.resolve())] = f"{size} bytes, sha1 {h.hexdigest()[:16]}"
    return out


def _decode(path: Path, line: bytes, offset: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"The corpus file {path} is not UTF-8 text ({error.reason} at byte {offset + error.start}): "
                         f"convert it to UTF-8.") from None


def _no_column(path: Path, column: str, columns: Sequence[str]) -> ValueError:
    listed = ", ".join(map(str, columns)) or "none"
    return ValueError(f"The corpus file {path} has no column {column!r} (its columns: {listed}): pass --text-column "
                      f"with the name of the column that holds the text.")


def _json_texts(path: Path, text: str, column: str) -> list[str | None]:
    if not text.strip():
        return []
    try:
        row = json.loads(text)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        raise ValueError(f"The corpus file {path} is not JSON Lines (one object per line): --streaming reads .jsonl "
                         f"line by line; convert it to JSON Lines, or drop --streaming.")
    value = row.get(column)
    return [None if value is None else str(value)]


def _line_records(path: Path, start: int, column: str) -> Iterator[tuple[list[str | None], int]]:
    """``(texts of one line, byte offset after it)`` from byte ``start`` on."""
    with open(path, "rb") as f:
        f.seek(start)
        offset = start
        for line in iter(f.readline, b""):
            text = _decode(path, line, offset)
            offset += len(line)
            if path.suffix.lower() in TEXT_SUFFIXES:
                yield text.splitlines(), offset  # as load_corpus's str.splitlines
            else:
                yield _json_texts(path, text, column), offset


def _table_records(path: Path, start: int, column: str) -> Iterator[tuple[list[str | None], int]]:
    """``([text of one row], row index after it)`` from row ``start`` on (CSV: the rows before are parsed again)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path)
        row, groups = 0, []
        for g in range(table.num_row_groups):
            n = table.metadata.row_group(g).num_rows
            if row + n > start or groups:
                groups.append(g)
            else:
                row += n
        chunks = (b.column(0).to_pylist() for b in table.iter_batches(1024, row_groups=groups, columns=[column]))
    else:
        import pandas as pd

        reader = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", keep_default_na=False,
                             na_values=[""], usecols=[column], dtype={column: str}, chunksize=1024)
        row, chunks = 0, (c[column].tolist() for c in reader)
    for values in chunks:
        for value in values:
            row += 1
            if row > start:
                yield [None if value is None or value != value else str(value)], row  # NaN: a missing cell


def _check_columns(path: Path, column: str) -> None:
    """A table file without ``column`` is refused before training starts."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
    elif suffix in (".csv", ".tsv"):
        import pandas as pd

        names = list(pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", nrows=0).columns)
    else:  # JSON Lines: the keys of the first object
        with open(path, "rb") as f:
            line = next((x for x in f if x.strip()), None)
        if line is None:
            return  # an empty file: nothing to read
        _json_texts(path, _decode(path, line, 0), column)  # refuses a line that is not an object
        names = list(json.loads(line))
    if column not in names:
        raise _no_column(path, column, names)


class TextStream:
    """Training examples ``{"input_ids": [...]}`` streamed from ``files``; :meth:`next_examples` takes the next ones.

    Args:
        files: local corpus files (:func:`stream_files`), read in this order.
        tokenizer: a fast BERT tokenizer (the teacher's).
        max_length: tokens per example, ``[CLS]`` and ``[SEP]`` included.
        text_column: the column of the text in tables and JSON Lines.
        seed: seeds the permutation of every window.
        heldout_documents: the first documents of the corpus, set aside in :attr:`heldout`.
        window: records (lines or rows) read, tokenized and shuffled together; memory grows with it.

    Raises:
        ValueError: a table without ``text_column``, a bad ``window``, or no document left after the held-out ones.
    """

    def __init__(self, files: Sequence[str | os.PathLike], tokenizer, max_length: int, *, text_column: str = "text",
                 seed: int = 0, heldout_documents: int = 0, window: int = DEFAULT_WINDOW) -> None:
        check_tokenizer(tokenizer)
        if max_length < 3:
            raise ValueError(f"max_length={max_length} leaves no room for text between [CLS] and [SEP]; use >= 3.")
        if window < 1:
            raise ValueError(f"--shuffle-window {window} must be >= 1: the lines or rows shuffled together.")
        self.files = [Path(f) for f in files]
        self.tokenizer, self.max_length, self.text_column = tokenizer, max_length, text_column
        self.seed, self.window = seed, window
        for f in self.files:
            _check_columns(f, text_column)
        self.heldout: list[list[str]] = []
        self._start: Position = (0, 0)
        for texts, position in self._records((0, 0)):
            if len(self.heldout) >= heldout_documents:
                break
            self.heldout.extend(documents_from_texts(texts))
            self._start = position
        if not any(self._examples(list(documents_from_texts(t))) for t, _ in self._records(self._start)):
            raise ValueError(f"The corpus {' '.join(map(str, self.files))} has no text left to train on after the "
                             f"{len(self.heldout)} held-out documents: lower --heldout-documents, or add text.")
        self._state = {"epoch": 0, "window": 0, "file": self._start[0], "offset": self._start[1], "taken": 0}
        self._buffer: list[np.ndarray] | None = None  # the current window's examples (L,), permuted
        self._end: Position = self._start
        self._reader: Iterator | None = None
        self._reader_at: Position | None = None

    def settings(self) -> dict[str, Any]:
        """What a resume must find unchanged: the files' fingerprints and the window."""
        return {"files": fingerprint(self.files), "window": self.window, "text_column": self.text_column}

    def state_dict(self) -> dict[str, int]:
        """The position: ``epoch``, ``window`` (its index in the epoch), ``file`` and ``offset`` (byte or row) of the
        window's start, ``taken`` (examples of the window already returned)."""
        return dict(self._state)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._state = {k: int(state[k]) for k in ("epoch", "window", "file", "offset", "taken")}
        self._buffer = None

    @property
    def epoch(self) -> int:
        return self._state["epoch"]

    def _records(self, start: Position) -> Iterator[tuple[list[str | None], Position]]:
        """``(texts of one record, position after it)`` from ``start`` to the end of the last file."""
        for i in range(start[0], len(self.files)):
            path = self.files[i]
            read = _line_records if path.suffix.lower() in LINE_SUFFIXES else _table_records
            for texts, after in read(path, start[1] if i == start[0] else 0, self.text_column):
                yield texts, (i, after)

    def _examples(self, documents: list[list[str]]) -> list[list[int]]:
        """The ``[CLS] chunk [SEP]`` examples of ``documents`` (the packing of ``build_segment_examples``)."""
        sentences = [s for d in documents for s in d]
        if not sentences:
            return []
        ids = iter(self.tokenizer(sentences, add_special_tokens=False, return_token_type_ids=False,
                                  return_attention_mask=False)["input_ids"])
        return pack_segments(([next(ids) for _ in document] for document in documents), self.tokenizer,
                             self.max_length)

    def _fill(self) -> None:
        """Read, tokenize and permute the window that starts at the state's position (the next epoch at the end)."""
        s = self._state
        start = (s["file"], s["offset"])
        if self._reader is None or self._reader_at != start:
            self._reader = self._records(start)
        documents, end = [], None
        for _, (texts, after) in zip(range(self.window), self._reader, strict=False):
            documents.extend(documents_from_texts(texts))
            end = after
        if end is None:  # the end of the corpus: the next epoch starts after the held-out documents
            self._state = {"epoch": s["epoch"] + 1, "window": 0, "file": self._start[0], "offset": self._start[1],
                           "taken": 0}
            self._reader = None
            return self._fill()
        examples = self._examples(documents)
        order = np.random.default_rng([self.seed % (1 << 63), s["epoch"], s["window"]]).permutation(len(examples))
        self._buffer = [np.asarray(examples[i], dtype=np.int32) for i in order]  # a third of a list's memory
        self._end = self._reader_at = end

    def next_examples(self, n: int) -> list[dict[str, list[int]]]:
        """The next ``n`` examples of the stream (across windows and epochs)."""
        out: list[np.ndarray] = []
        while len(out) < n:
            if self._buffer is None:
                self._fill()
            s = self._state
            if s["taken"] >= len(self._buffer):  # the window is used up: the next one
                self._state = {**s, "window": s["window"] + 1, "file": self._end[0], "offset": self._end[1],
                               "taken": 0}
                self._buffer = None
                continue
            k = min(n - len(out), len(self._buffer) - s["taken"])
            out.extend(self._buffer[s["taken"]:s["taken"] + k])
            s["taken"] += k
        return [{"input_ids": ids.tolist()} for ids in out]
