"""List the numbers in a chapter's prose that none of its outputs printed (the book's rule on numbers).

    python scripts/check_numbers.py _build/run-tiny            # a run_book.py output dir (its notebooks/)
    python scripts/check_numbers.py /tmp/run/notebooks/05_distillation_math.ipynb

A number written in a markdown cell must come from an executed output of the same chapter, a citation, or be
a definition rather than a measurement (book/CONVENTIONS.md). This script reads executed notebooks and prints
each number of the prose that no output of that notebook shows, at the prose's precision (``0.93`` matches an
output ``0.9312``; ``66M`` matches ``66,955,010``; ``93%`` matches ``0.93`` or ``93.1%``). Numbers that are not
measurements are left out by the rules in :data:`ALLOWED` and :func:`_allowed` (each with its reason), and so are
settings written in the chapter's own code cells. It prints its findings and exits 0 (``--strict``: 1 when there
are findings). ``tests/test_book.py`` runs it with ``--strict`` on the executed tiny book.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

#: Values that are definitions of the method or the architecture, not measurements (value -> reason).
ALLOWED: dict[float, str] = {
    15: "BERT masks 15% of the tokens (the method's definition)",
    0.15: "the same 15%, written as a probability",
    80: "masking's 80/10/10 split: [MASK], random token, unchanged",
    768: "BERT-base's hidden size",
    3072: "BERT-base's feed-forward size",
    30522: "the bert-base-uncased vocabulary size",
    512: "BERT's maximum sequence length",
    64: "the head size of BERT-base (768 / 12), set rather than measured",
    0.5: "one half: chance level of a binary task, a weight, a probability in a definition",
    0.1: "dropout probability and the 10% of masking's 80/10/10, definitions",
    85: "100 - 15: the share of positions that masking leaves out of the loss",
    127: "the largest magnitude of a symmetric int8 code, [-127, 127] (quantization's definition)",
    0.85: "1 - 0.15: the share of tokens that masking leaves unselected (the binomial's other probability)",
    100: "percent of a whole",
}
SMALL = 12  # integers up to 12: counts in a definition (layers, heads, chapters, "2 sentences"), not results
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)(\d{1,3}(?:(?:,|\{,\})\d{3})+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
                    r"(\s?%|\s?(?:[kKMB]\b|thousand\b|million\b|billion\b))?")
SCALE = {"k": 1e3, "K": 1e3, "thousand": 1e3, "M": 1e6, "million": 1e6, "B": 1e9, "billion": 1e9}
CITE = re.compile(r"\{cite(?::\w+)?\}`[^`]*`")


@dataclass
class Finding:
    notebook: str
    cell: int
    number: str
    context: str
    in_math: bool

    def __str__(self) -> str:
        where = " (in math)" if self.in_math else ""
        return f"{self.notebook}, cell {self.cell}: {self.number}{where}: ...{self.context}..."


def _value(digits: str, suffix: str | None) -> tuple[float, float]:
    """A number as written -> (value, half a unit of its last digit): ``"0.93"`` -> (0.93, 0.005)."""
    digits = digits.replace("{,}", "").replace(",", "")
    mantissa = re.split(r"[eE]", digits)[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    scale = SCALE.get((suffix or "").strip(), 1.0)
    return float(digits) * scale, 0.5 * 10.0 ** -decimals * scale


def _output_text(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed or displayed, as text."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            for mime, data in out.get("data", {}).items():
                if mime.startswith("text/") or mime == "application/json":
                    text = data if isinstance(data, str) else "".join(data) if isinstance(data, list) else str(data)
                    parts.append(html.unescape(re.sub(r"<[^>]+>", " ", text)) if mime == "text/html" else text)
    return "\n".join(parts)


def _output_values(text: str) -> list[float]:
    values = []
    for m in NUMBER.finditer(text):
        value, _ = _value(m.group(1), m.group(2))
        values.append(value)
        if (m.group(2) or "").strip() == "%":
            values.append(value / 100)  # 93.1% printed, 0.93 written
    return values


def _prose(source: str) -> str:
    """Markdown without what is not prose: code blocks, inline code (a role's target is kept), the first line of a
    directive (its argument, e.g. a figure's path) and its options, links' targets, labels, HTML tags, URLs.
    A directive's body (a figure's caption, a note) is prose and stays."""
    source = re.sub(r"^(`{3,}|~{3,}|:{3,})\{[^}]*\}.*$", " ", source, flags=re.M)  # ```{figure} path
    source = re.sub(r"^(`{3,}|~{3,}).*?^\1\s*$", " ", source, flags=re.M | re.S)  # code blocks
    source = re.sub(r"(\{[\w:-]+\}`[^`]*`)|`[^`]*`", lambda m: m.group(1) or " ", source)  # roles stay, code goes
    source = re.sub(r"\]\([^)]*\)|<[^>]+>|https?://\S+|^:[\w-]+:.*$|^\(\w[\w-]*\)=", " ", source, flags=re.M)
    return source


def _math_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\$\$.*?\$\$|\$[^$\n]+\$", text, re.S)]


def _code_literals(nb: nbformat.NotebookNode) -> set[float]:
    """The numbers written in the notebook's code cells: settings the chapter chooses (a toy batch's sizes,
    a sweep's values), which its prose may repeat without an output printing them."""
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return {float(m.group(0)) for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", source)}


def _allowed(text: str, start: int, end: int, value: float, math: bool, settings: set[float] = frozenset()) -> str | None:
    """Why a number of the prose is not a measurement, or None."""
    if value in ALLOWED:
        return ALLOWED[value]
    if value in settings:
        return "a setting written in the chapter's code"
    if value.is_integer() and 0 <= value <= SMALL:
        return "a small count (layers, heads, chapters, sentences)"
    if value.is_integer() and 1900 <= value <= 2099 and "." not in text[start:end]:
        return "a year (of a paper or a release)"
    sentence = re.split(r"(?<=[.!?])\s", text[max(0, start - 300):end + 300])
    if any(CITE.search(s) for s in sentence if text[start:end] in s):
        return "a published number with a citation in the same sentence"
    if math and (text[start - 1:start] in "^_{" or text[max(0, start - 6):start].endswith(("\\frac{", "^{", "_{"))):
        return "an exponent, index or constant of a formula"
    return None


def check(path: Path) -> list[Finding]:
    """The numbers of a notebook's markdown that no output of the notebook shows."""
    nb = nbformat.read(path, as_version=4)
    printed = _output_values(_output_text(nb))
    settings = _code_literals(nb)
    findings = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        text = _prose(cell.source)
        math = _math_spans(text)
        for m in NUMBER.finditer(text):
            start, end = m.span(1)
            in_math = any(a <= start < b for a, b in math)
            suffix = m.group(2) if not in_math or (m.group(2) or "").strip() == "%" else None  # $2M$: 2 times M
            value, tolerance = _value(m.group(1), suffix)
            if _allowed(text, start, end, value, in_math, settings):
                continue
            percent = (suffix or "").strip() == "%"
            wanted = [value, value / 100] if percent else [value]
            tolerances = [tolerance, tolerance / 100] if percent else [tolerance]
            if any(abs(p - w) <= t + 1e-12 for p in printed for w, t in zip(wanted, tolerances, strict=True)):
                continue
            context = re.sub(r"\s+", " ", text[max(0, start - 50):end + 50]).strip()
            findings.append(Finding(path.name, index, (m.group(1) + (suffix or "")).strip(), context, in_math))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="executed notebooks, or run_book.py output dirs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when there are findings")
    args = parser.parse_args(argv)
    notebooks = []
    for path in args.paths:
        folder = path / "notebooks" if (path / "notebooks").is_dir() else path
        notebooks += sorted(folder.glob("[0-9][0-9]_*.ipynb")) if folder.is_dir() else [path]
    total = 0
    for notebook in notebooks:
        findings = check(notebook)
        total += len(findings)
        print(f"{notebook.name}: {len(findings)} number(s) in the prose that no output shows")
        for finding in findings:
            print(f"  {finding}")
    print(f"{total} finding(s) in {len(notebooks)} notebook(s)")
    return 1 if args.strict and total else 0


if __name__ == "__main__":
    sys.exit(main())
