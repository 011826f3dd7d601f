"""The package's own code, shown in the book: a chapter renders a function or class from the installed package.

The book teaches from the code that trains, not from a copy of it: a chapter calls :func:`show_code` on the
function, method or class it explains, and the executed page shows that object's source as it is in
``src/studentbert/`` (with its file and line numbers), so the prose and the package cannot drift apart.

    >>> from studentbert.source import show_code
    >>> from studentbert.losses import soft_target_loss
    >>> show_code(soft_target_loss)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parent


class SourceCode:
    """An object's source, displayed as a highlighted Python block (Markdown) or as plain text.

    Attributes:
        name: the object's qualified name, e.g. ``"MultiHeadAttention.forward"``.
        path: the file, relative to the repository (``src/studentbert/...``).
        first_line, last_line: where the source sits in that file (1-based, inclusive).
        code: the source, dedented.
    """

    def __init__(self, obj: Any) -> None:
        target = inspect.unwrap(obj)
        lines, first = inspect.getsourcelines(target)
        file = Path(inspect.getsourcefile(target) or "").resolve()
        try:
            self.path = "src/studentbert/" + file.relative_to(PACKAGE_ROOT).as_posix()
        except ValueError:
            raise ValueError(f"show_code shows the package's code; {obj!r} comes from {file}.") from None
        self.name = getattr(target, "__qualname__", getattr(target, "__name__", repr(target)))
        self.first_line, self.last_line = first, first + len(lines) - 1
        self.code = textwrap.dedent("".join(lines)).rstrip("\n")

    @property
    def header(self) -> str:
        return f"# {self.path}, lines {self.first_line}-{self.last_line}: {self.name}"

    def __repr__(self) -> str:
        return f"{self.header}\n{self.code}"

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.header}\n{self.code}\n```"


def show_code(*objects: Any) -> SourceCode | None:
    """Show each object's source from the installed package.

    In a notebook the last value of a cell is displayed, so ``show_code(f)`` as a cell's last line renders
    ``f``'s source (the returned :class:`SourceCode`); with several objects each is displayed in turn
    (``IPython.display``, or printed outside IPython) and nothing is returned.

    Raises:
        ValueError: an object that is not defined in ``studentbert``.
    """
    shown = [SourceCode(obj) for obj in objects]
    if len(shown) == 1:
        return shown[0]
    try:
        from IPython.display import display
    except ImportError:  # outside IPython: print
        for s in shown:
            print(repr(s))
    else:
        for s in shown:
            display(s)
    return None
