"""``distill --streaming``: a corpus read window by window, never whole, with an exact resume mid-stream.

The corpus is small local files of every kind the stream reads (``.txt`` with blank lines, ``.jsonl``, ``.csv``,
``.parquet``); the teacher is a tiny random BERT with a WordPiece trained on the same text (as in
``tests/test_distill_own.py``). The memory and the time to the first step on a 1 GB file are measured by
``benchmarks/bench_streaming.py``, not here.
"""

from __future__ import annotations

import collections
import dataclasses
import json

import pandas as pd
import pytest
import torch
import yaml
from helpers import cli_runner, one_line, torch_threads

from studentbert.bert import BertForPreTraining
from studentbert.config import BertConfig
from studentbert.data import train_wordpiece
from studentbert.data.corpora import load_corpus
from studentbert.data.segments import build_segment_examples
from studentbert.data.streaming import TextStream, stream_files
from studentbert.distill import distill
from studentbert.hf import save_pretrained
from studentbert.profiles import get_profile

PARTS = "pump valve seal rotor bearing motor sensor filter gasket shaft impeller coupling".split()


def _text(i: int) -> str:
    return (f"The {PARTS[i % 12]} on line {i} failed at noon. Engineers replaced the {PARTS[i * 5 % 12]} within "
            f"{i % 7 + 1} hours. The {PARTS[i * 7 % 12]} was checked again.")


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> dict:
    """A teacher and its tokenizer; ``corpus``: a .txt (every fifth line blank), a .jsonl, a .csv and a .parquet
    (text in the column ``body``); ``small``: one .txt of 14 texts (a few steps cross an epoch)."""
    root = tmp_path_factory.mktemp("stream")
    with torch_threads(1):
        tokenizer = train_wordpiece([_text(i) for i in range(60)], vocab_size=200, output_dir=root / "tokenizer")
        torch.manual_seed(0)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_layers=4, num_heads=2,
                            intermediate_size=32, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
        save_pretrained(BertForPreTraining(config), root / "teacher", tokenizer)
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("\n".join(_text(i) if i % 5 else "" for i in range(40)) + "\n")
    (corpus / "b.jsonl").write_text("".join(json.dumps({"id": i, "body": _text(i)}) + "\n" for i in range(40, 60)))
    pd.DataFrame({"body": [_text(i) for i in range(60, 75)]}).to_csv(corpus / "c.csv", index=False)
    pd.DataFrame({"body": [_text(i) for i in range(75, 90)]}).to_parquet(corpus / "d.parquet")
    (root / "small.txt").write_text("\n".join(_text(i) for i in range(100, 114)) + "\n")
    return {"root": root, "teacher": root / "teacher", "tokenizer": tokenizer, "corpus": corpus,
            "small": root / "small.txt"}


def _ids(examples) -> list[tuple[int, ...]]:
    return [tuple(e["input_ids"]) for e in examples]


def test_every_example_once_per_epoch_after_the_held_out_documents(own):
    files = stream_files([str(own["corpus"])])
    assert [f.name for f in files] == ["a.txt", "b.jsonl", "c.csv", "d.parquet"]
    stream = TextStream(files, own["tokenizer"], 32, text_column="body", seed=3, heldout_documents=5, window=7)
    documents = load_corpus([str(own["corpus"])], "body")  # the whole corpus in memory, as without --streaming
    assert len(documents) == 32 + 20 + 15 + 15 and stream.heldout == documents[:5]
    expected = collections.Counter(_ids(build_segment_examples(documents[5:], own["tokenizer"], max_length=32)))
    epochs: dict[int, list] = collections.defaultdict(list)
    while stream.epoch < 2:
        (example,) = stream.next_examples(1)
        epochs[stream.epoch].append(tuple(example["input_ids"]))  # the epoch of the window it came from
    assert collections.Counter(epochs[0]) == expected  # no document dropped or read twice
    assert collections.Counter(epochs[1]) == expected
    assert epochs[0] != epochs[1]  # another permutation of every window in the next epoch

def test_the_state_resumes_inside_a_window(own):
    def stream() -> TextStream:
        return TextStream([own["small"], own["corpus"] / "b.jsonl"], own["tokenizer"], 32, text_column="body",
                          seed=0, heldout_documents=2, window=5)

    a = stream()
    a.next_examples(13)
    state = a.state_dict()
    assert state["taken"] > 0 and state["window"] > 0  # inside a window that is not the first
    later = _ids(a.next_examples(40))  # crosses the end of the corpus (32 texts, 30 trained on)
    assert a.epoch == 1
    b = stream()
    b.load_state_dict(json.loads(json.dumps(state)))  # the state is JSON-able
    assert _ids(b.next_examples(40)) == later


def _profile(steps: int):
    profile = get_profile("tiny")
    train = dataclasses.replace(profile.distill, max_steps=steps, batch_size=4, eval_every=0, save_every=0,
                                log_every=1, learning_rate=2e-3, seed=1)
    return profile.replace(student_layers=2, distill=train,
                           data=dataclasses.replace(profile.data, max_length=32, heldout_documents=2))


def test_a_streamed_run_resumed_mid_stream_equals_an_uninterrupted_run(own, tmp_path):
    run = {"stream_files": [own["small"]], "shuffle_window": 4}
    with torch_threads(1):
        distill(_profile(9), own["teacher"], tmp_path / "straight", **run)
        distill(_profile(9), own["teacher"], tmp_path / "stopped", stop_after=2, **run)
        stopped = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=False)
        distill(_profile(9), own["teacher"], tmp_path / "stopped", **run)  # a new stream, model, optimizer
    assert stopped["step"] == 2 and stopped["stream"]["epoch"] == 0
    assert stopped["stream"]["taken"] > 0  # stopped inside a window, with a part of it still to come
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 9 and a["stream"] == b["stream"]
    assert a["stream"]["epoch"] >= 1  # 36 examples of 12 texts: the run went round the corpus
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert list(a["settings"]["streaming"]["files"]) == [str(own["small"].resolve())]  # what a resume compares


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))
    return cli_runner(capsys)


def test_cli_streams_from_a_config_file_and_refuses_a_resume_on_a_changed_corpus(own, cli, tmp_path):
    corpus, out = tmp_path / "notes.txt", tmp_path / "student"
    corpus.write_text(own["small"].read_text())
    config = tmp_path / "distill.yaml"
    config.write_text(yaml.safe_dump({"teacher": str(own["teacher"]), "corpus": [str(corpus)], "streaming": True,
                                      "shuffle_window": 4, "heldout_documents": 2, "max_steps": 2, "batch_size": 4,
                                      "eval_every": 0, "save_every": 0, "max_length": 32, "student_layers": 2,
                                      "output_dir": str(out)}))
    with torch_threads(1):
        status, err = cli("distill", "--config", str(config))
    assert status == 0, err
    run = json.loads((out / "run_config.json").read_text())
    assert run["streaming"] is True and run["shuffle_window"] == 4 and run["heldout_documents"] == 2
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2 and state["stream"]["epoch"] == 0
    assert json.loads((out / "results.json").read_text())["steps"] == 2
    with corpus.open("a") as f:  # the corpus grows: the byte offsets of the checkpoint mean nothing any more
        f.write(_text(500) + "\n")
    status, err = cli("distill", "--config", str(config), "--max-steps", "4", "--override-on-resume", "max_steps")
    message = one_line(err)
    assert status == 2 and f"settings.streaming.files.{corpus.resolve()}" in message and "--restart" in message


def test_streaming_errors_exit_2_with_one_line(own, cli, tmp_path):
    (tmp_path / "array.json").write_text(json.dumps([{"body": _text(1)}, {"body": _text(2)}]))
    (tmp_path / "latin1.txt").write_bytes(_text(1).encode() + b"\n caf\xe9\n")
    distill_args = ["distill", "--teacher", str(own["teacher"]), "--output-dir", str(tmp_path / "out"),
                    "--max-steps", "1", "--batch-size", "4", "--streaming", "--heldout-documents", "1"]
    cases = [
        (distill_args, "--streaming reads the --corpus files"),
        ([*distill_args, "--corpus", "wikitext"], "--corpus wikitext is a datasets id"),
        ([*distill_args, "--corpus", str(own["small"]), "--heldout-documents", "14"], "no text left to train on"),
        ([*distill_args, "--corpus", str(own["small"]), "--heldout-documents", "0"], "must be >= 1"),
        ([*distill_args, "--corpus", str(own["small"]), "--shuffle-window", "0"], "--shuffle-window 0 must be >= 1"),
        ([*distill_args, "--corpus", str(own["corpus"] / "c.csv")], "has no column 'text' (its columns: body)"),
        ([*distill_args, "--corpus", str(tmp_path / "array.json"), "--text-column", "body"], "is not JSON Lines"),
        ([*distill_args, "--corpus", str(tmp_path / "latin1.txt"), "--heldout-documents", "1"], "is not UTF-8"),
        (["pretrain", "--corpus", str(own["small"]), "--streaming", "--output-dir", str(tmp_path / "t")],
         "pretrain does not stream yet"),
    ]
    for argv, message in cases:
        status, err = cli(*argv)
        assert status == 2 and message in one_line(err), (argv, err)
    assert not (tmp_path / "out" / "checkpoint.pt").exists() and not (tmp_path / "t").exists()
