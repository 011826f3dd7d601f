"""The package's layout, drawn from its imports (``ast``; every import, also those inside functions).

* Every module sits in a layer and imports only from its own layer or the ones below: core, interop, data,
  measurement, stages, experiments, artifacts, tools, cli. So data/ imports no stage, the stages import neither
  :mod:`studentbert.artifacts` nor :mod:`studentbert.experiments`, and nothing in src/ imports the CLI.
* A stage does not reach into a sibling stage; there is no circle of imports.
* Every module has a docstring (its one concept) and at most :data:`MAX_LINES` lines.
* The cache fingerprint leaves out only modules that :mod:`studentbert.artifacts` never imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "studentbert"
MAX_LINES = 420  # "about 400"
#: Modules allowed to be longer, with their limit (none at present).
LONGER: dict[str, int] = {}

LAYERS = [
    ("core", {"config", "source", "attention", "encoder", "bert", "distilbert", "losses", "triple_loss", "optim", "checkpoint", "stopping",
              "training", "profiles", "flops", "gpus", "hardware", "report"}),
    ("interop", {"convert", "hf", "student_init", "hf_trainer"}),
    ("data", {"data"}),
    ("measurement", {"evaluation", "speed"}),
    ("stages", {"pretrain", "distill", "finetune"}),
    ("experiments", {"experiments", "report_card"}),
    ("artifacts", {"artifacts"}),
    ("tools", {"standins", "export"}),
    ("cli", {"config_file", "cli", "cli_tasks", "__main__", "__init__"}),
]
STAGES = LAYERS[4][1]


def _name(path: Path) -> str:
    """``data/corpus.py`` -> ``data.corpus``; ``data/__init__.py`` -> ``data``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for rank, (_, members) in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"studentbert.{module} is in no layer: add it to LAYERS in {__file__}")


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> list[str]:
    """The package modules that ``from ... import ...`` in ``module`` reaches."""
    if node.level == 0:
        if not (node.module or "").startswith("studentbert"):
            return []
        base = node.module.split(".")[1:]
    else:
        package = module.split(".") if path.name == "__init__.py" and module != "__init__" else module.split(".")[:-1]
        if module == "__init__":
            package = []
        base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    found = []
    for alias in node.names:
        candidate = ".".join([*base, alias.name])
        found.append(candidate if candidate in MODULES else ".".join(base) or "__init__")
    return found


def imports(module: str) -> set[str]:
    path = MODULES[module]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.update(_resolve(module, path, node))
        elif isinstance(node, ast.Import):
            out.update(".".join(a.name.split(".")[1:]) or "__init__" for a in node.names
                       if a.name.startswith("studentbert"))
    return {m for m in out if m != module}


GRAPH = {m: imports(m) for m in MODULES}


def test_every_import_resolves_to_a_module():
    unknown = {(m, i) for m, deps in GRAPH.items() for i in deps if i not in MODULES}
    assert not unknown


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    rank = _layer(module)
    upward = sorted(i for i in GRAPH[module] if _layer(i) > rank)
    assert not upward, f"studentbert.{module} ({LAYERS[rank][0]}) imports from higher layers: {upward}"
    if module.split(".")[0] in STAGES:
        siblings = sorted(i for i in GRAPH[module] if i in STAGES)
        assert not siblings, f"the stage {module} reaches into the stages {siblings}: pass it its inputs"
    if module != "__main__":
        assert "cli" not in GRAPH[module]


def test_no_circle_of_imports():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                raise AssertionError(f"circle of imports: {' -> '.join(stack[stack.index(d):] + [d])}")
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_has_a_docstring_and_a_modest_size(module):
    path = MODULES[module]
    if path.name == "__main__.py":
        return
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path} has no module docstring saying its concept"
    lines, limit = len(path.read_text().splitlines()), LONGER.get(path.relative_to(ROOT).as_posix(), MAX_LINES)
    assert lines <= limit, f"{path} has {lines} lines (> {limit}): split it by concept"


def test_fingerprint_leaves_out_only_modules_that_artifacts_do_not_import():
    from studentbert.artifacts import NOT_IN_FINGERPRINT

    closure, todo = set(), ["artifacts"]
    while todo:
        m = todo.pop()
        if m not in closure:
            closure.add(m)
            todo.extend(GRAPH[m])
    files = {MODULES[m].relative_to(ROOT).as_posix() for m in closure}
    assert not (files & NOT_IN_FINGERPRINT), sorted(files & NOT_IN_FINGERPRINT)
    assert NOT_IN_FINGERPRINT <= {p.relative_to(ROOT).as_posix() for p in MODULES.values()}
