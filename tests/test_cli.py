"""The command line's user errors: one line on stderr, exit status 2, no traceback (``--debug`` shows it)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from helpers import cli_runner, one_line

import studentbert as sb
from studentbert.checkpoint import OutputDirLock
from studentbert.cli import main


def small_profile() -> sb.Profile:
    p = sb.get_profile("tiny")
    return p.replace(
        data=dataclasses.replace(p.data, num_documents=200, heldout_documents=20, vocab_size=400),
        teacher=p.teacher.replace(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32),
        pretrain=dataclasses.replace(p.pretrain, max_steps=2, batch_size=8, eval_every=0, save_every=2, log_every=1),
    )


@pytest.fixture
def cli(tmp_path_factory, monkeypatch, capsys):
    """``cli(*args) -> (status, stderr)`` on the small profile, with a corpus cache shared by the tests."""
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path_factory.getbasetemp() / "cli-home"))
    monkeypatch.setattr("studentbert.cli.get_profile", lambda name: small_profile())

    return cli_runner(capsys)


def test_missing_teacher_directory(cli, tmp_path: Path):
    for teacher in (str(tmp_path / "runs" / "nonexistent" / "model"), "./nonexistent-teacher"):
        status, err = cli("distill", "--teacher", teacher, "--output-dir", str(tmp_path / "out"))
        assert status == 2 and "no such" in one_line(err).lower() and teacher in err


def test_teacher_that_is_not_a_bert(cli, tmp_path: Path):
    transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path / "gpt2")
    status, err = cli("distill", "--teacher", str(tmp_path / "gpt2"), "--output-dir", str(tmp_path / "out"))
    assert status == 2 and "BERT" in one_line(err)


def test_output_dir_that_is_a_file(cli, tmp_path: Path):
    (tmp_path / "file").write_text("x")
    status, err = cli("pretrain", "--output-dir", str(tmp_path / "file"))
    assert status == 2 and "is a file, not a directory" in one_line(err)
    with pytest.raises(NotADirectoryError):  # --debug: the exception itself, with its traceback
        main(["pretrain", "--output-dir", str(tmp_path / "file"), "--debug"])


def test_locked_output_dir_in_this_and_another_process(cli, tmp_path: Path):
    out = tmp_path / "run"
    with OutputDirLock(out):
        status, err = cli("pretrain", "--output-dir", str(out))
    assert status == 2 and f"pid={os.getpid()}" in one_line(err) and "host=" in err
    code = ("import sys, time; from studentbert.checkpoint import OutputDirLock; OutputDirLock(sys.argv[1]).acquire();"
            " print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        status, err = cli("pretrain", "--output-dir", str(out))
        assert status == 2 and f"pid={holder.pid}" in one_line(err)
    finally:
        holder.kill()
        holder.wait()
    assert not (out / "checkpoint.pt").exists()


def test_corrupt_checkpoint_then_restart(cli, tmp_path: Path):
    out = tmp_path / "run"
    assert cli("pretrain", "--output-dir", str(out))[0] == 0
    (out / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes()[:1000])
    status, err = cli("pretrain", "--output-dir", str(out))
    line = one_line(err)
    assert status == 2 and "corrupt or truncated" in line and str(out / "checkpoint.pt") in line and "--restart" in line
    assert cli("pretrain", "--output-dir", str(out), "--restart")[0] == 0
    assert (out / "checkpoint.pt.old").stat().st_size == 1000
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 2


def test_changed_setting_on_resume_and_the_override(cli, tmp_path: Path):
    out = tmp_path / "run"
    assert cli("pretrain", "--output-dir", str(out))[0] == 0
    status, err = cli("pretrain", "--output-dir", str(out), "--learning-rate", "0.5", "--seed", "3")
    line = one_line(err)
    assert status == 2 and "learning_rate: 0.001 -> 0.5" in line and "seed: 0 -> 3" in line
    assert "--override-on-resume learning_rate" in line
    # extending the run on purpose: allowed, and recorded
    assert cli("pretrain", "--output-dir", str(out), "--max-steps", "3", "--override-on-resume", "max_steps")[0] == 0
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3 and state["history"][0]["changes"] == {"max_steps": [2, 3]}
    assert json.loads((out / "results.json").read_text())["history"] == state["history"]


def test_fp16_on_a_cpu_is_refused(cli, tmp_path: Path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    status, err = cli("pretrain", "--output-dir", str(tmp_path / "run"), "--mixed-precision", "fp16")
    assert status == 2 and "'fp16' needs a CUDA GPU" in one_line(err)


def test_a_real_process_prints_one_line_and_exits_2(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "studentbert", "pretrain", "--output-dir", str(tmp_path / "file")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
