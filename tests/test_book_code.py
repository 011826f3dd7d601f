"""The book shows the code it teaches, from the package, in one way.

A chapter shows package code with ``show_code(obj)`` (:mod:`studentbert.source`). These tests read every
``book/NN_*.ipynb`` with ``ast`` (no execution): each ``show_code`` argument is resolved through the notebook's
imports to an object of ``studentbert`` (``MLMCollator.__call__`` with ``from studentbert.data.pretraining import
MLMCollator`` is ``studentbert.data.pretraining.MLMCollator.__call__``), and

* every argument is package code that :class:`studentbert.source.SourceCode` can show;
* together the chapters show each piece of :data:`TAUGHT` (the pieces the prose explains);
* no chapter prints source some other way (``inspect.getsource``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))

#: What the book explains and therefore shows. A class counts as shown when it or one of its methods is
#: (``MultiHeadAttention.forward``); a method counts when it or its class is.
TAUGHT = [
    "studentbert.attention.MultiHeadAttention",
    "studentbert.attention.attention_math",
    "studentbert.encoder.EncoderLayer",
    "studentbert.encoder.Embeddings",
    "studentbert.encoder.MLMHead",
    "studentbert.bert.BertForPreTraining",  # with its next-sentence head
    "studentbert.data.pretraining.MLMCollator",
    "studentbert.student_init.init_student_from_teacher",
    "studentbert.losses.soft_target_loss",
    "studentbert.losses.hard_loss",
    "studentbert.losses.cosine_loss",
    "studentbert.triple_loss.DistillationLoss",
    "studentbert.distill.DistillationStep",
    "studentbert.training.Trainer.train_step",
]

#: Calls that print an object's source; the book uses ``show_code`` instead (file and lines, highlighted).
OTHER_WAYS = {"getsource", "getsourcelines"}


def _code_cells(path: Path) -> list[tuple[int, ast.Module]]:
    """The notebook's code cells as Python syntax trees (IPython magics turned into Python first)."""
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    cells = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code" and cell.source.strip():
            try:
                cells.append((index, ast.parse(transform(cell.source))))
            except SyntaxError as error:
                pytest.fail(f"{path.name}, cell {index}: not Python: {error}")
    return cells


def _imports(trees: list[ast.Module]) -> dict[str, str]:
    """The names a notebook binds to ``studentbert``'s modules and objects: local name -> dotted path."""
    names: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] == "studentbert":
                    names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "studentbert":
                        names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
    return names


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """``MLMCollator.__call__`` -> ``studentbert.data.pretraining.MLMCollator.__call__``; None: not an import."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return f"{base}.{node.attr}" if base else None
    return None


def _resolve(dotted: str) -> Any:
    """The object a dotted path names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _canonical(obj: Any) -> str:
    """Where an object is defined, ``module.QualName`` (a re-export and its original compare equal)."""
    obj = inspect.unwrap(obj)
    return f"{obj.__module__}.{obj.__qualname__}"


def shown_in(path: Path) -> list[tuple[int, str]]:
    """Each ``show_code`` argument of a chapter, as (cell index, dotted path or the source of what is unresolved)."""
    cells = _code_cells(path)
    names = _imports([tree for _, tree in cells])
    shown = []
    for index, tree in cells:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Name) and node.func.id == "show_code")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "show_code")
            ):
                shown += [(index, _dotted(arg, names) or f"<unresolved: {ast.unparse(arg)}>") for arg in node.args]
    return shown


def _other_ways(path: Path) -> list[str]:
    """Where a chapter reaches for ``inspect.getsource`` (a call, an attribute or an import)."""
    found = []
    for index, tree in _code_cells(path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in OTHER_WAYS:
                found.append(f"cell {index}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom) and node.module == "inspect":
                found += [f"cell {index}: from inspect import {a.name}" for a in node.names if a.name in OTHER_WAYS]
    return found


def _covers(shown: str, taught: str) -> bool:
    return shown == taught or shown.startswith(taught + ".") or taught.startswith(shown + ".")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_shown_object_is_package_code(path: Path):
    from studentbert.source import SourceCode

    for index, dotted in shown_in(path):
        assert dotted.startswith("studentbert."), (
            f"{path.name}, cell {index}: show_code({dotted}) is not an object imported from studentbert"
        )
        SourceCode(_resolve(dotted))  # raises for an object defined outside src/studentbert


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_chapter_prints_source_another_way(path: Path):
    assert not _other_ways(path), f"{path.name} uses inspect; show its code with show_code: {_other_ways(path)}"


def test_the_book_shows_the_code_it_teaches():
    shown = {}
    for path in NOTEBOOKS:
        for _, dotted in shown_in(path):
            if dotted.startswith("studentbert."):
                shown.setdefault(_canonical(_resolve(dotted)), path.stem)
    missing = [t for t in TAUGHT if not any(_covers(s, _canonical(_resolve(t))) for s in shown)]
    assert not missing, f"no chapter shows {missing} (shown: {sorted(shown)})"


def test_show_code_calls_are_found_and_resolved(tmp_path: Path):
    """The reader of notebooks itself, on a small notebook: imports with aliases, modules, methods, magics."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nimport studentbert.losses as L\n"
                                  "from studentbert.data.pretraining import MLMCollator as Collator\n"
                                  "from studentbert import source\nfrom studentbert.source import show_code"),
        nbformat.v4.new_markdown_cell("show_code(NotCode)"),
        nbformat.v4.new_code_cell("x = 1\nshow_code(Collator.__call__, L.hard_loss)"),
        nbformat.v4.new_code_cell("source.show_code(len)\nimport inspect\nprint(inspect.getsource(L.hard_loss))"),
    ]
    path = tmp_path / "99_example.ipynb"
    nbformat.write(nb, path)
    assert shown_in(path) == [(2, "studentbert.data.pretraining.MLMCollator.__call__"),
                              (2, "studentbert.losses.hard_loss"), (3, "<unresolved: len>")]
    assert _other_ways(path) == ["cell 3: inspect.getsource"]
    assert _canonical(_resolve("studentbert.MultiHeadAttention")) == "studentbert.attention.MultiHeadAttention"
    assert _covers("studentbert.attention.MultiHeadAttention.forward", "studentbert.attention.MultiHeadAttention")
    assert _covers("studentbert.training.Trainer", "studentbert.training.Trainer.train_step")
    assert not _covers("studentbert.losses.hard_loss_with_mask", "studentbert.losses.hard_loss")
