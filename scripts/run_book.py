"""Execute every chapter of the book with papermill, at one profile, and record what it measured.

    python scripts/run_book.py --profile tiny                 # 2-core CPU, offline, minutes
    python scripts/run_book.py --profile tiny --build         # ... and build the website from the outputs
    python scripts/run_book.py --profile full                 # one GPU, hours; hub data when online
    python scripts/run_book.py --profile full --dry-run       # no GPU needed: do all chapters accept `full`?
    python scripts/run_book.py --profile full --smoke         # every cell at full shapes, a few steps, on a CPU
    python scripts/run_book.py --profile full --overrides '{"teacher_checkpoint": "/data/bert-base-uncased"}'

The chapters run in the order of ``_toc.yml``, each alone in a fresh kernel (as papermill runs them), sharing
one artifact cache (``--home``, default ``$STUDENTBERT_HOME``), so that the teacher pretrained in chapter 4
is reused by chapters 6 and 7. Each chapter has a time budget for the profile (``BUDGETS``; for ``full``, the
estimate of :mod:`studentbert.gpus` for the GPU at hand): the results file records the time it took next to
its budget. A budget is a measurement to report, not a reason to fail: a chapter fails when it raises, or
when it runs past a generous hard limit (``--timeout-factor`` times its budget, at least 20 minutes, times
1 + the cores that other work kept busy as it started, :func:`studentbert.speed.busy_cores`, which the record
keeps) that a loaded machine does not reach. The kernel keeps torch's own thread count whatever the load: the
chapters' numbers must not depend on what else the machine was doing (with one thread instead of two, the
tiny chapter 7 trained a student that kept 96.7% of its teacher's accuracy, where two threads gave 99.3%).

``--smoke`` executes every cell of every chapter with ``profile="full"`` and ``smoke=True``: the full shapes
(BERT-base teacher, 6-layer student, the bert-base-uncased vocabulary, 128 tokens, SST-2's schema) with a
handful of steps and small data, on local stand-ins of the hub's models and datasets
(:mod:`studentbert.standins`, made once under ``<home>/standins``) passed through the chapters' ``overrides``
parameter: the same mechanism serves readers with local copies (``--overrides JSON``).

Writes into ``--output-dir`` (default ``_build/run-<profile>``):

* ``notebooks/NN_name.ipynb``: the executed chapters (with outputs);
* ``results.json``: the machine, and for each chapter its status, seconds, budget and the numbers it
  recorded with :func:`studentbert.report.record`;
* with ``--build``: ``html/``, the website built by Jupyter Book from the executed chapters (no second
  execution).

The dry run executes, for each chapter, only the cells that set it up (its ``parameters`` cell with the
profile injected and the cells tagged ``setup``: imports and the resolution of the profile's settings), and
checks the profile's model configurations. It exits non-zero if any chapter fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# Seconds per chapter. tiny: the 2-core CPU of CI (the whole book must take under 10 minutes);
# full: one H100-class GPU (on another GPU, studentbert.gpus estimates them); smoke: the 2-core CPU.
BUDGETS: dict[str, dict[str, int]] = {
    "tiny": {
        # measured on the quiet 2-core machine (whole book 534 s), each rounded up; they add up to 595 s
        "01_attention": 20, "02_bert": 15, "03_data": 20, "04_pretraining": 190, "05_distillation_math": 15,
        "06_distilbert": 120, "07_finetuning": 115, "08_transformers": 45, "09_landscape": 10,
        "10_performance": 15, "11_deployment": 30,
    },
    "full": {
        "01_attention": 120, "02_bert": 300, "03_data": 1800, "04_pretraining": 4 * 3600,
        "05_distillation_math": 120, "06_distilbert": 4 * 3600, "07_finetuning": 2 * 3600,
        "08_transformers": 1800, "09_landscape": 120, "10_performance": 600, "11_deployment": 300,
    },
}
BUDGETS["smoke"] = {
    "01_attention": 30, "02_bert": 40, "03_data": 60, "04_pretraining": 150, "05_distillation_math": 15,
    "06_distilbert": 150, "07_finetuning": 200, "08_transformers": 150, "09_landscape": 10,
    "10_performance": 40, "11_deployment": 120,
}
DEFAULT_BUDGET = {"tiny": 60, "full": 3600, "smoke": 120}
# The whole book: the tiny profile must execute in under 10 minutes on a 2-core CPU.
TOTAL_GOAL_S = {"tiny": 600, "full": None, "smoke": None}
MIN_HARD_LIMIT_S = 1200  # no chapter is stopped before 20 minutes: budgets are reported, not enforced


def budget_for(kind: str, chapter: str) -> float:
    """Seconds that ``chapter`` should take: ``kind`` is tiny, smoke or full (on the GPU at hand, estimated)."""
    if kind == "full":
        try:
            from studentbert.gpus import chapter_budgets

            estimated = chapter_budgets()
        except (ImportError, RuntimeError):  # no GPU to estimate for: the H100 budgets
            estimated = {}
        if chapter in estimated:
            return estimated[chapter]
    return BUDGETS[kind].get(chapter, DEFAULT_BUDGET[kind])


def chapters() -> list[Path]:
    """The notebooks of ``_toc.yml``, in book order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    notebooks = [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]
    if not notebooks:
        raise SystemExit("No notebooks found through _toc.yml: run this script from a checkout of the book.")
    return notebooks


def machine() -> dict:
    import torch

    from studentbert.hardware import cpu_name

    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "cpu": cpu_name()}
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def _parameters_cell(nb) -> int:
    cells = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"needs exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def _declared_parameters(nb) -> set[str]:
    import ast

    tree = ast.parse(nb.cells[_parameters_cell(nb)].source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}


def _errors(nb) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _environment(home: Path, results_file: Path, offline: bool) -> dict:
    env = dict(os.environ, STUDENTBERT_HOME=str(home), STUDENTBERT_RESULTS=str(results_file))
    if offline:
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _shared(record: dict) -> str:
    """``  [other work kept 2.0 cores busy]`` when the chapter shared the machine, else ``""``."""
    busy = record.get("busy_cores", 0.0)
    if busy < 0.5:
        return ""
    return f"  [other work kept {busy:.1f} cores busy]"


def run_chapter(path: Path, profile: str, out_dir: Path, home: Path, budget: float, timeout_factor: float,
                offline: bool, dry_run: bool, parameters: dict | None = None) -> dict:
    """Execute one chapter (or its set-up cells, for a dry run) in a fresh kernel; return its record."""
    import nbformat

    name = path.stem
    results_file = out_dir / "recorded" / f"{name}.jsonl"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.unlink(missing_ok=True)
    record = {"chapter": name, "budget_s": budget}
    nb = nbformat.read(path, as_version=4)
    parameters = {"profile": profile, **(parameters or {})}
    try:
        unknown = set(parameters) - _declared_parameters(nb)
        if unknown:
            raise ValueError(f"its parameters cell does not define {sorted(unknown)}")
        if dry_run:
            keep = [c for c in nb.cells if c.cell_type == "code" and
                    {"parameters", "setup"} & set(c.metadata.get("tags", []))]
            if not any("setup" in c.metadata.get("tags", []) for c in keep):
                raise ValueError("no cell is tagged 'setup' (the imports and the resolution of the profile)")
            nb = copy.deepcopy(nb)
            nb.cells = copy.deepcopy(keep)
    except ValueError as e:
        return {**record, "status": "failed", "error": f"{path.name}: {e}", "seconds": 0.0}
    source = out_dir / "source" / path.name
    source.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, source)
    target = out_dir / "notebooks" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    # Another job on the machine slows the chapter down: allow for it in the limit, and record it. The kernel
    # keeps torch's thread count: with fewer threads the arithmetic (and so every trained number) differs.
    from studentbert.speed import busy_cores

    busy = 0.0 if dry_run else busy_cores(0.5)
    record["busy_cores"] = round(busy, 2)
    hard_limit = max(budget * timeout_factor, MIN_HARD_LIMIT_S) * (1 + busy)
    parameters_file = out_dir / "source" / f"{name}.parameters.yaml"
    parameters_file.write_text(json.dumps(parameters))  # JSON is YAML: papermill's -f reads it
    command = [sys.executable, "-m", "papermill", str(source), str(target), "-f", str(parameters_file),
               "--cwd", str(BOOK), "-k", "python3", "--no-progress-bar", "--execution-timeout", str(int(hard_limit))]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, env=_environment(home, results_file, offline), capture_output=True,
                              text=True, timeout=hard_limit + 60)
        failed = proc.returncode != 0
        message = proc.stderr.strip().splitlines()[-1] if failed and proc.stderr.strip() else ""
    except subprocess.TimeoutExpired:
        failed, message = True, f"stopped after {hard_limit:.0f} s (the hard limit; its budget is {budget:g} s)"
    seconds = time.perf_counter() - start
    record.update(seconds=round(seconds, 1), within_budget=seconds <= budget)
    if target.exists():
        errors = _errors(nbformat.read(target, as_version=4))
        if errors:
            failed, message = True, errors[0]
    record["status"] = "failed" if failed else "ok"
    if failed:
        record["error"] = message
    if results_file.exists():
        from studentbert.report import read

        record["recorded"] = read(results_file)
    return record


def check_profile(profile: str, smoke: bool = False, overrides: dict | None = None) -> dict:
    """Build the profile's teacher and student on the meta device (no memory) and count their parameters."""
    import torch

    from studentbert import (
        BertForPreTraining,
        DistilBertConfig,
        DistilBertForMaskedLM,
        count_parameters,
        get_profile,
    )

    settings = get_profile(profile, smoke=smoke, overrides=overrides)
    student = DistilBertConfig.from_teacher(settings.teacher, num_layers=settings.student_layers)
    with torch.device("meta"):
        teacher_params = count_parameters(BertForPreTraining(settings.teacher))
        student_params = count_parameters(DistilBertForMaskedLM(student))
    return {"teacher_parameters": teacher_params, "student_parameters": student_params,
            "teacher_layers": settings.teacher.num_layers, "student_layers": settings.student_layers,
            "hidden_size": settings.teacher.hidden_size, "vocab_size": settings.teacher.vocab_size,
            "max_length": settings.data.max_length, "corpus": settings.data.corpus,
            "teacher_checkpoint": settings.teacher_checkpoint, "task": settings.task.name}


def build_site(out_dir: Path) -> Path:
    """Build the website from the executed notebooks (Jupyter Book, no re-execution, warnings as errors)."""
    import yaml

    stage = out_dir / "site"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(ROOT / "_toc.yml", stage / "_toc.yml")
    shutil.copytree(BOOK, stage / "book", ignore=shutil.ignore_patterns("*.ipynb", "__pycache__",
                                                                         ".ipynb_checkpoints"))
    import nbformat

    for executed in sorted((out_dir / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(executed, as_version=4)
        for cell in nb.cells:  # papermill's copy of the parameters: the site shows the parameters cell once
            tags = cell.metadata.get("tags", [])
            if "injected-parameters" in tags and "remove-cell" not in tags:
                tags.append("remove-cell")
        nbformat.write(nb, stage / "book" / executed.name)
    command = ["jupyter-book", "build", str(stage), "-W", "-n", "--keep-going", "--path-output", str(out_dir)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"jupyter-book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    html = out_dir / "_build" / "html"
    if not (html / "index.html").exists():
        raise SystemExit(f"jupyter-book build wrote no {html / 'index.html'}")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: _build/run-<profile>")
    parser.add_argument("--home", type=Path, default=None,
                        help="artifact cache shared by the chapters (default: $STUDENTBERT_HOME or ~/.cache/studentbert)")
    parser.add_argument("--dry-run", action="store_true", help="run only each chapter's set-up cells")
    parser.add_argument("--only", nargs="*", default=None, help="chapter name prefixes, e.g. 04 06")
    parser.add_argument("--smoke", action="store_true",
                        help="with --profile full: every cell at full shapes, a handful of steps, local stand-ins")
    parser.add_argument("--overrides", type=json.loads, default=None,
                        help='JSON settings in place of the profile\'s, e.g. \'{"teacher_checkpoint": "/data/bert"}\'')
    parser.add_argument("--standins", type=Path, default=None,
                        help="where --smoke writes its stand-ins (default: <home>/standins)")
    parser.add_argument("--timeout-factor", type=float, default=8.0,
                        help=f"hard limit: stop a chapter after this many times its budget, and never before "
                             f"{MIN_HARD_LIMIT_S} s (default 8)")
    parser.add_argument("--online", action="store_true",
                        help="allow hub downloads (default for --profile full; tiny runs offline)")
    parser.add_argument("--build", action="store_true", help="then build the website from the executed chapters")
    args = parser.parse_args(argv)

    from studentbert.artifacts import home as default_home

    if args.smoke and args.profile != "full":
        parser.error("--smoke runs the full profile at smoke scale: use it with --profile full")
    kind = "smoke" if args.smoke else args.profile
    suffix = "-smoke" if args.smoke else "-dry" if args.dry_run else ""
    out_dir = (args.output_dir or ROOT / "_build" / f"run-{args.profile}{suffix}").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    home = (args.home or default_home()).resolve()
    offline = (args.profile == "tiny" or args.smoke) and not args.online
    overrides = dict(args.overrides or {})
    if args.smoke:
        from studentbert.standins import make_standins, standin_overrides

        print("stand-ins for the hub's models and datasets (made once) ...", flush=True)
        overrides = {**standin_overrides(make_standins((args.standins or home / "standins").resolve())), **overrides}
    parameters = {"smoke": args.smoke, "overrides": overrides} if (args.smoke or overrides) else {}
    notebooks = chapters()
    if args.only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in args.only)]
    results = {"profile": args.profile, "smoke": args.smoke, "dry_run": args.dry_run,
               "command": " ".join(["python", *sys.argv]), "overrides": overrides,
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), "home": str(home),
               "models": check_profile(args.profile, args.smoke, overrides), "chapters": []}
    print(f"profile {args.profile}{' (smoke)' if args.smoke else ''}{' (dry run)' if args.dry_run else ''}: "
          f"{len(notebooks)} chapters -> {out_dir}")
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **_):
            return x
    for path in tqdm(notebooks, desc="chapters", unit="chapter"):
        budget = budget_for(kind, path.stem)
        record = run_chapter(path, args.profile, out_dir, home, budget, args.timeout_factor, offline, args.dry_run,
                             parameters)
        results["chapters"].append(record)
        flag = "" if record.get("within_budget", True) or args.dry_run else "  OVER BUDGET"
        print(f"  {record['chapter']:<24} {record['status']:<6} {record['seconds']:>8.1f} s "
              f"(budget {budget} s){flag}{_shared(record)}{'  ' + record['error'] if 'error' in record else ''}",
              flush=True)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    chapters_run = results["chapters"]
    results["total_seconds"] = round(sum(c["seconds"] for c in chapters_run), 1)
    results["total_budget_s"] = sum(c["budget_s"] for c in chapters_run)
    results["failed"] = [c["chapter"] for c in chapters_run if c["status"] != "ok"]
    results["over_budget"] = [c["chapter"] for c in chapters_run if not c.get("within_budget", True)]
    goal = TOTAL_GOAL_S[kind]
    if goal and not args.dry_run and not args.only:
        results["total_goal_s"] = goal
        results["within_total_goal"] = results["total_seconds"] <= goal
    if args.build and not results["failed"] and not args.dry_run:
        results["site"] = str(build_site(out_dir))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    if "total_goal_s" in results:
        print(f"whole book: {results['total_seconds']:.0f} s, goal under {results['total_goal_s']} s: "
              f"{'met' if results['within_total_goal'] else 'MISSED'}")
    print(f"total {results['total_seconds']:.0f} s for {len(chapters_run)} chapters; failed: "
          f"{results['failed'] or 'none'}; over budget: {results['over_budget'] or 'none'}")
    print(f"results: {out_dir / 'results.json'}")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
