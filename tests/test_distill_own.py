"""Your own teacher, corpus, tokenizer and settings, through ``python -m studentbert distill`` and ``pretrain``.

A tiny teacher (4 layers of width 16, a WordPiece vocabulary trained on the test's own text) is written with the
package's classes; the corpus is local files: a ``.txt`` (one text per line, some blank), a ``.jsonl`` (its
``body`` column) and a glob. Settings come from a ``--config`` file, overridden by flags; each user error exits
with status 2 and one line that names the problem and the fix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers import cli_runner, one_line

from studentbert.bert import BertForPreTraining
from studentbert.cli import build_parser, main
from studentbert.config import BertConfig
from studentbert.data import train_wordpiece
from studentbert.hf import load_pretrained, save_pretrained
from studentbert.standins import bert_vocabulary_dir

PARTS = "pump valve seal rotor bearing motor sensor filter gasket shaft impeller coupling".split()


def _text(i: int) -> str:
    return (f"The {PARTS[i % 12]} on line {i} failed at noon. Engineers replaced the {PARTS[i * 5 % 12]} within "
            f"{i % 7 + 1} hours. The {PARTS[i * 7 % 12]} was checked again.")


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> dict[str, Path]:
    """A teacher with its tokenizer, and a corpus of a .txt file, a second .txt and a .jsonl."""
    root = tmp_path_factory.mktemp("own")
    tokenizer = train_wordpiece([_text(i) for i in range(60)], vocab_size=200, output_dir=root / "tokenizer")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_layers=4, num_heads=2, intermediate_size=32,
                        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    save_pretrained(BertForPreTraining(config), root / "teacher", tokenizer)
    (root / "notes").mkdir()
    lines = [_text(i) if i % 5 else "" for i in range(40)]  # every fifth line blank
    (root / "notes" / "a.txt").write_text("\n".join(lines) + "\n")
    (root / "notes" / "b.txt").write_text("\n".join(_text(i) for i in range(40, 60)) + "\n")
    (root / "tickets.jsonl").write_text("".join(json.dumps({"id": i, "body": _text(i)}) + "\n" for i in range(60, 90)))
    return {"root": root, "teacher": root / "teacher", "tokenizer": root / "tokenizer"}


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))  # nothing of the profile's cache is needed
    return cli_runner(capsys)


def _config(path: Path, **settings) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


TINY = {"batch_size": 4, "eval_every": 0, "save_every": 0, "max_length": 32}


def test_distil_from_local_files_with_a_config_file_and_a_flag_override(own, cli, tmp_path):
    root, out = own["root"], tmp_path / "student"
    config = _config(tmp_path / "distill.yaml", teacher=str(own["teacher"]), text_column="body", max_steps=3,
                     learning_rate=2e-3, layers=[3, 0], **{"output-dir": str(out)}, **TINY,
                     corpus=[str(root / "notes" / "*.txt"), str(root / "tickets.jsonl")])
    status, err = cli("distill", "--config", str(config), "--max-steps", "2")
    assert status == 0, err
    run = json.loads((out / "run_config.json").read_text())
    assert run["max_steps"] == 2 and run["learning_rate"] == 2e-3  # the flag wins; the file's value otherwise
    assert run["layers"] == [3, 0] and run["student_layers"] == 2 and run["text_column"] == "body"
    assert run["heldout_documents"] == 8  # a tenth of the 32 + 20 + 30 non-blank texts
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 2 and results["layers"] == [3, 0]
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["config"]["max_steps"] == 2 and state["config"]["learning_rate"] == 2e-3
    assert state["settings"]["layers"] == [3, 0] and "tickets.jsonl" in state["settings"]["data"]["corpus"]
    steps = [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if r.get("split") == "train"]
    assert steps[-1] == 2


def test_layers_are_the_teacher_layers_copied_into_the_student(own, cli, tmp_path):
    out = tmp_path / "student"
    status, err = cli("distill", "--teacher", str(own["teacher"]), "--corpus", str(own["root"] / "notes"),
                      "--layers", "3", "1", "--max-steps", "1", "--learning-rate", "1e-12", "--batch-size", "4",
                      "--eval-every", "0", "--output-dir", str(out))
    assert status == 0, err
    teacher, student = load_pretrained(own["teacher"]), load_pretrained(out / "model")
    t_layers, s_layers = teacher.bert.encoder.layers, student.distilbert.encoder.layers
    for i, j in enumerate([3, 1]):  # one step at a learning rate of 1e-12 leaves the copies as they were
        for name, value in s_layers[i].state_dict().items():
            assert torch.allclose(value, t_layers[j].state_dict()[name], atol=1e-8), (i, j, name)
        other = t_layers[2].state_dict()
        assert not all(torch.allclose(v, other[k]) for k, v in s_layers[i].state_dict().items())


def test_print_config_prints_the_settings_in_force_and_reads_back(own, tmp_path, capsys):
    config = _config(tmp_path / "c.yaml", teacher=str(own["teacher"]), corpus=[str(own["root"] / "notes")],
                     learning_rate=3e-4, layers=[0, 2, 3])
    out = tmp_path / "never"
    status = main(["distill", "--config", str(config), "--max-steps", "7", "--output-dir", str(out), "--print-config"])
    printed = capsys.readouterr().out
    settings = yaml.safe_load(printed)
    assert status == 0 and not out.exists()
    assert settings["max_steps"] == 7 and settings["learning_rate"] == 3e-4 and settings["layers"] == [0, 2, 3]
    assert settings["student_layers"] == 3 and settings["batch_size"] == 32  # the profile's default
    assert settings["teacher"] == str(own["teacher"]) and "config" not in settings and "restart" not in settings
    (tmp_path / "printed.yaml").write_text(printed)
    assert main(["distill", "--config", str(tmp_path / "printed.yaml"), "--print-config", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == settings


def test_pretrain_from_local_files_with_a_config_file(own, cli, tmp_path):
    out = tmp_path / "teacher"
    config = _config(tmp_path / "pretrain.json", corpus=[str(own["root"] / "notes" / "a.txt"),
                                                         str(own["root"] / "tickets.jsonl")],
                     text_column="body", vocab_size=150, max_steps=2, **TINY)
    config.write_text(json.dumps(yaml.safe_load(config.read_text())))  # the same settings, as JSON
    status, err = cli("pretrain", "--config", str(config), "--output-dir", str(out), "--learning-rate", "1e-3")
    assert status == 0, err
    run = json.loads((out / "run_config.json").read_text())
    assert run["vocab_size"] == 150 and run["learning_rate"] == 1e-3 and run["max_steps"] == 2
    assert json.loads((out / "results.json").read_text())["steps"] == 2
    vocab = json.loads((out / "model" / "config.json").read_text())["vocab_size"]
    assert vocab <= 150 and (out / "tokenizer" / "tokenizer.json").is_file()  # trained on the corpus
    # resuming the run with another corpus is refused, naming the change
    status, err = cli("pretrain", "--config", str(config), "--output-dir", str(out), "--learning-rate", "1e-3",
                      "--corpus", str(own["root"] / "notes"))
    assert status == 2 and "settings.data.corpus" in one_line(err) and "--restart" in err


def _bad_tokenizer(own, tmp_path: Path) -> Path:
    """The teacher's vocabulary with [MASK] turned into an ordinary word: a tokenizer with no mask token."""
    d = tmp_path / "no-mask"
    d.mkdir()
    (d / "tokenizer.json").write_text((own["tokenizer"] / "tokenizer.json").read_text().replace("[MASK]", "maskword"))
    config = json.loads((own["tokenizer"] / "tokenizer_config.json").read_text())
    del config["mask_token"]
    (d / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "PreTrainedTokenizerFast"}))
    return d


def test_user_errors_exit_2_with_one_line(own, cli, tmp_path):
    root = own["root"]
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    bert_vocab = tmp_path / "bert-vocab"
    shutil.copytree(bert_vocabulary_dir(), bert_vocab)
    distill = ["distill", "--teacher", str(own["teacher"]), "--output-dir", str(tmp_path / "out"), "--max-steps", "1",
               "--batch-size", "4"]
    notes = ["--corpus", str(root / "notes")]
    cases = [
        ([*distill, "--corpus", str(root / "missing.txt")], "No such corpus file or directory"),
        ([*distill, "--corpus", str(root / "nothing" / "*.txt")], "matches no file"),
        ([*distill, "--corpus", str(root / "tickets.jsonl")], "has no column 'text' (its columns: id, body)"),
        ([*distill, "--corpus", str(tmp_path / "blank.txt")], "has no text"),
        ([*distill, *notes, "--tokenizer", str(bert_vocab)], "embedding rows"),
        ([*distill, *notes, "--tokenizer", str(_bad_tokenizer(own, tmp_path))], "lacks mask_token"),
        ([*distill, *notes, "--tokenizer", str(tmp_path / "no-such-tokenizer")], "No such --tokenizer directory"),
        ([*distill, *notes, "--student-layers", "2", "--layers", "0", "1", "2"], "lists 3 teacher layers"),
        ([*distill, *notes, "--layers", "0", "4"], "the teacher has 4 layers, so every index must be in 0..3"),
    ]
    bad_key = _config(tmp_path / "typo.yaml", learning_rat=1e-3)
    cases.append(([*distill, *notes, "--config", str(bad_key)], "unknown key 'learning_rat' (did you mean "
                                                                 "'learning_rate'?)"))
    (tmp_path / "broken.yaml").write_text("corpus: [a.txt\nmax_steps: 2\n")
    cases.append(([*distill, *notes, "--config", str(tmp_path / "broken.yaml")], "does not parse as YAML"))
    (tmp_path / "broken.json").write_text('{"max_steps": 2,}')
    cases.append(([*distill, *notes, "--config", str(tmp_path / "broken.json")], "does not parse as JSON"))
    wrong_type = _config(tmp_path / "type.yaml", max_steps="many")
    cases.append(([*distill, *notes, "--config", str(wrong_type)], "invalid int value: 'many'"))
    cases.append((["distill", *notes, "--output-dir", str(tmp_path / "out")], "distill needs a teacher"))
    for argv, message in cases:
        status, err = cli(*argv)
        assert status == 2 and message in one_line(err), (argv, err)
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_help_shows_every_flag_with_its_default_and_an_example():
    commands = build_parser().subcommands
    for name in ("pretrain", "distill"):
        parser = commands[name]
        undocumented = [a.option_strings for a in parser._actions if a.option_strings and a.help is None]
        assert not undocumented, (name, undocumented)
        text = parser.format_help()
        assert "(default: train)" in text and "--config FILE" in text and "--corpus notes/*.txt" in parser.epilog
