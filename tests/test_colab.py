"""A chapter opened in Colab runs: its install cell installs everything the chapter imports, and every address
of the repository comes from ``_config.yml``.

* static: every module that a chapter imports is the standard library, a file of ``benchmarks/`` (chapter 10
  clones the repository for it), or provided by a distribution that ``torch`` + ``studentbert[book]`` pulls in,
  computed from the installed packages' metadata;
* for real: a fresh virtual environment holding only the CPU torch wheel and ``studentbert[book]`` imports
  every such module (the install cell installs the same requirement from git);
* the Colab badge, the install cell and ``studentbert.report.REPOSITORY`` all name ``_config.yml``'s
  ``repository.url``, so publishing elsewhere is one edit and ``python scripts/set_repository.py``.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
INSTALL = re.compile(r'"studentbert(\[[\w,]+\])? @ git\+([^"]+)"')


def _code(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _imports(path: Path) -> set[str]:
    found = set()
    for source in _code(path):
        lines = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(lines)):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _install_cell(path: Path) -> tuple[list[str], str]:
    match = INSTALL.search(_code(path)[1])
    assert match, f"{path.name}: the second code cell must pip install 'studentbert[...] @ git+URL'"
    return (match.group(1) or "[]").strip("[]").split(","), match.group(2)


def _third_party(path: Path) -> set[str]:
    repo_modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    return {m for m in _imports(path) if m not in sys.stdlib_module_names and m not in repo_modules
            and m != "studentbert"}


def _closure(requirements: list[str]) -> set[str]:
    """Normalised names of the distributions these requirements install, transitively (installed metadata)."""
    seen: set[str] = set()
    todo = [(Requirement(r), set()) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        wanted = extras | set(req.extras)
        for r in dist.requires or []:
            sub = Requirement(r)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in wanted or {""}):
                todo.append((sub, set()))
    return seen


def test_install_cell_installs_what_every_chapter_imports():
    providers = md.packages_distributions()
    for path in NOTEBOOKS:
        extras, _ = _install_cell(path)
        installed = _closure(["torch", f"studentbert[{','.join(extras)}]"] if extras != [""] else ["torch", "studentbert"])
        for module in sorted(_third_party(path)):
            dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [])}
            assert dists, f"{path.name} imports {module}, which no installed distribution provides"
            assert dists & installed, (
                f"{path.name} imports {module} (from {sorted(dists)}), which its install cell "
                f"(studentbert[{','.join(extras)}]) does not install: add it to that extra in pyproject.toml")


def test_every_address_of_the_repository_is_config_yml():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    owner_name = url.removeprefix("https://github.com/")
    import studentbert.report

    assert studentbert.report.REPOSITORY == url
    for path in NOTEBOOKS:
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert f"colab.research.google.com/github/{owner_name}/blob/main/book/{path.name}" in first, path.name
        assert _install_cell(path)[1] == url, f"{path.name}: run python scripts/set_repository.py"


def test_set_repository_rewrites_every_address(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import set_repository
    finally:
        sys.path.pop(0)
    text = "".join(json.dumps(_code(NOTEBOOKS[0])) + json.loads(NOTEBOOKS[0].read_text())["cells"][0]["source"][2])
    moved = set_repository.rewrite(text, "https://github.com/someone/book-fork")
    assert "github.com/studentbert/studentbert" not in moved
    assert "colab.research.google.com/github/someone/book-fork/blob/main/book/" in moved
    assert "studentbert[book] @ git+https://github.com/someone/book-fork" in moved


VENV_TEST = "test_fresh_venv_with_torch_and_the_install_cell_imports_every_chapter_module"


def build_colab_venv(directory: Path) -> subprocess.Popen:
    """Start building, in the background, a fresh virtual environment with only the CPU torch wheel and
    ``studentbert[<the install cells' extras>]``, then importing every module a chapter imports.

    It mostly waits on pip, so ``conftest.py`` starts it when the test is collected, and the other tests run
    meanwhile; the test reads its result.
    """
    import torch

    venv = directory / "venv"
    python = venv / "bin" / "python"
    torch_req = f"torch=={torch.__version__.split('+')[0]}"  # this machine's CPU wheel, as Colab keeps its own
    extras = sorted({e for p in NOTEBOOKS for e in _install_cell(p)[0] if e})
    modules = sorted(set().union(*(_third_party(p) for p in NOTEBOOKS)) | {"studentbert"})
    check = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\nprint('imported', {len(modules)})"
    script = " && ".join([
        f"{sys.executable} -m venv {venv}",
        f"{python} -m pip install -q {torch_req}",
        f"{python} -m pip install -q '{ROOT}[{','.join(extras)}]'",
        f"cd {directory} && {python} -c \"{check}\"",
    ])
    log = open(directory / "log.txt", "w")  # noqa: SIM115 - the process writes it after this function returns
    process = subprocess.Popen(["bash", "-c", script], stdout=log, stderr=subprocess.STDOUT)
    process.modules, process.directory = modules, directory  # type: ignore[attr-defined]
    return process


@pytest.mark.skipif(not os.environ.get("CI") and not os.environ.get("STUDENTBERT_VENV_TEST"),
                    reason="builds a fresh virtual environment from PyPI (a few minutes): CI runs it, or set "
                           "STUDENTBERT_VENV_TEST=1")
def test_fresh_venv_with_torch_and_the_install_cell_imports_every_chapter_module(request, tmp_path):
    process = getattr(request.config, "_colab_venv", None)
    if process is None:  # run on its own: build it now
        process = build_colab_venv(tmp_path)
    try:
        process.wait(timeout=1800)
        output = (process.directory / "log.txt").read_text()
    finally:  # the venv is about 2 GB, and conftest.py builds it in a directory of its own, outside tmp_path
        if process.directory != tmp_path:
            shutil.rmtree(process.directory, ignore_errors=True)
    assert process.returncode == 0, output[-3000:]
    assert f"imported {len(process.modules)}" in output
