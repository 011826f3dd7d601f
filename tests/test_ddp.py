"""Multi-process training goes through DDP and follows the same trajectory as single-process training.

``tests/ddp_worker.py`` trains the same seeded tiny BERT for 10 steps with :class:`~studentbert.training.Trainer`
(global batch 8, fixed masking, no dropout, examples of equal length: see its docstring for why this makes
the runs comparable) once as one plain process and once as two processes under
``torchrun --standalone --nproc_per_node=2`` (CPU, gloo backend, ``OMP_NUM_THREADS=1``). Asserted:

* the two-process run really had world size 2, each process took 4 of the 8 examples of every batch, and the
  model was wrapped in ``torch.nn.parallel.DistributedDataParallel`` (both processes end with equal weights);
* the logged per-step loss (the mean over processes), learning rate and gradient norm agree with the
  one-process run to ``TOL_LOSS = 1e-5`` (measured: ~7e-7, i.e. float32 rounding; a wrong learning-rate
  schedule or a loss logged from one process only differs by ~1e-2);
* the final weights (the Trainer's ``checkpoint.pt``) agree to ``TOL_WEIGHTS = 1e-5`` max abs (measured ~6e-8).

Fine-tuning (:func:`studentbert.finetune.finetune`, a ``transformers`` BERT classifier with dropout 0, global
batch 8) runs on the same loop: its 2-process run follows the 1-process loss trajectory and ends with the same
weights (same tolerances).

Takes ~40 s on 2 CPU cores (mostly interpreter start-up and imports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = 10
TOL_LOSS = 1e-5  # max abs difference of the per-step logged loss / grad norm (one vs two processes)
TOL_WEIGHTS = 1e-5  # max abs difference of any final weight

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available")


def _env() -> dict[str, str]:
    """A clean environment: no inherited launcher variables, CPU only (gloo), one thread per process."""
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR",
                "MASTER_PORT", "TORCHELASTIC_", "ACCELERATE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(launcher)}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    return env


def _run(cmd: list[str], out: Path) -> dict:
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[dict, dict]:
    tmp = tmp_path_factory.mktemp("ddp")
    one = _run([sys.executable, str(WORKER), str(tmp / "one.json"), "--steps", str(STEPS)], tmp / "one.json")
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                str(WORKER), str(tmp / "two.json"), "--steps", str(STEPS)], tmp / "two.json")
    return one, two


def _final_weights(run: dict) -> dict[str, torch.Tensor]:
    return torch.load(run["checkpoint"], map_location="cpu", weights_only=False)["model"]


def test_two_processes_run_under_ddp(runs):
    one, two = runs
    assert one["world_size"] == 1 and one["model_type"] == "BertForPreTraining"
    assert two["world_size"] == two["env_world_size"] == 2
    assert two["backend"] == "gloo" and "MULTI_CPU" in two["distributed_type"]
    assert two["model_type"] == "DistributedDataParallel"
    ranks = two["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["batch_sizes"] == [4] * STEPS for r in ranks)  # each process: half of every global batch of 8
    assert ranks[0]["local_losses"] != ranks[1]["local_losses"]  # ... a different half
    assert ranks[0]["weight_checksum"] == ranks[1]["weight_checksum"]  # DDP kept the replicas identical


def test_loss_trajectory_matches_single_process(runs):
    one, two = runs
    assert one["steps"] == two["steps"] == list(range(1, STEPS + 1))
    assert one["lr"] == pytest.approx(two["lr"], rel=1e-12, abs=1e-12)  # the schedule steps once per step
    # the logged loss of the 2-process run is the mean of the two local losses, i.e. the global-batch loss
    local_mean = [sum(x) / 2 for x in zip(*(r["local_losses"] for r in two["ranks"]), strict=True)]
    assert max(abs(a - b) for a, b in zip(local_mean, two["loss"], strict=True)) < 1e-6
    loss_diff = max(abs(a - b) for a, b in zip(one["loss"], two["loss"], strict=True))
    norm_diff = max(abs(a - b) for a, b in zip(one["grad_norm"], two["grad_norm"], strict=True))
    assert loss_diff < TOL_LOSS, (loss_diff, one["loss"], two["loss"])
    assert norm_diff < TOL_LOSS, (norm_diff, one["grad_norm"], two["grad_norm"])
    assert one["loss"][-1] < one["loss"][0]  # it did train


def test_final_weights_match_single_process(runs):
    one, two = runs
    a, b = _final_weights(one), _final_weights(two)
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff < TOL_WEIGHTS, diff


@pytest.fixture(scope="module")
def finetune_runs(tmp_path_factory) -> tuple[dict, dict]:
    import studentbert as sb
    from studentbert.data import generate_sentiment, train_wordpiece

    tmp = tmp_path_factory.mktemp("ddp-finetune")
    tokenizer = train_wordpiece([t for t, _ in generate_sentiment(200)], vocab_size=200)
    torch.manual_seed(0)
    model = sb.BertForPreTraining(sb.BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
        max_position_embeddings=32, hidden_dropout=0.0, attention_dropout=0.0))
    model_dir = sb.save_pretrained(model, tmp / "bert", tokenizer)
    args = [str(WORKER), "--finetune", str(model_dir), "--steps", str(STEPS)]
    one = _run([sys.executable, args[0], str(tmp / "one.json"), *args[1:]], tmp / "one.json")
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", args[0],
                str(tmp / "two.json"), *args[1:]], tmp / "two.json")
    return one, two


def test_finetuning_with_two_processes_matches_one(finetune_runs):
    from safetensors.torch import load_file

    one, two = finetune_runs
    assert one["world_size"] == 1 and two["world_size"] == two["env_world_size"] == 2
    assert one["steps"] == two["steps"] == list(range(1, STEPS + 1))
    assert one["lr"] == pytest.approx(two["lr"], rel=1e-12, abs=1e-12)
    loss_diff = max(abs(a - b) for a, b in zip(one["loss"], two["loss"], strict=True))
    norm_diff = max(abs(a - b) for a, b in zip(one["grad_norm"], two["grad_norm"], strict=True))
    assert loss_diff < TOL_LOSS and norm_diff < TOL_LOSS, (one, two)
    a = load_file(Path(one["model_dir"]) / "model.safetensors")
    b = load_file(Path(two["model_dir"]) / "model.safetensors")
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff < TOL_WEIGHTS, diff
