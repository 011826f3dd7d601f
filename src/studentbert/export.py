"""Export a classifier or encoder to ONNX, fp32 or int8, with its tokenizer, and check it against PyTorch.

A model that is deployed runs outside the training code: on a server or a small device, under
``onnxruntime``, with only a tokenizer beside it. :func:`export_onnx` turns a Hugging Face BERT or DistilBERT
directory (a fine-tuned classifier from ``finetune``, or a pretraining/distillation checkpoint, whose encoder
is exported) into such a folder:

* ``model.onnx``: the graph, traced by ``torch.onnx.export`` (the ``torch.export``-based exporter), with a
  dynamic batch size and sequence length; inputs ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for
  BERT), output ``logits`` (a classifier) or ``last_hidden_state`` (an encoder);
* ``model_int8.onnx`` (with ``int8=True``): the same graph after ``onnxruntime``'s dynamic quantization: the
  weights of every matrix product (and the embedding tables) are stored as 8-bit integers with a scale, and
  the activations are quantized on the fly, batch by batch;
* the tokenizer and ``config.json`` (labels, sizes), so that the folder is self-contained;
* ``export.json``: the check. The fp32 graph must reproduce PyTorch's outputs within ``atol`` on a padded
  batch of sentences; for the int8 graph, which cannot, the largest difference and (for a classifier) the
  fraction of sentences whose predicted class agrees with PyTorch's are reported.

``onnx``, ``onnxscript`` and ``onnxruntime`` are the optional extra ``studentbert[deploy]``; the rest of the
package does not need them.

    studentbert export --model runs/finetune/model --output-dir runs/onnx --int8
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

FP32_FILE, INT8_FILE, REPORT_FILE = "model.onnx", "model_int8.onnx", "export.json"
DEPLOY_EXTRA = "pip install 'studentbert[deploy]' (onnx, onnxscript, onnxruntime)"

# sentences of several lengths (so the check pads), for a model whose own test set is not at hand
DEFAULT_TEXTS = (
    "a wonderful film , i loved every minute of it .",
    "the plot was dull and the acting was worse .",
    "not bad .",
    "the service was slow , the food cold , and nobody seemed to care about either .",
    "an honest , moving and beautifully made story that stays with you long after the end .",
    "i would not recommend it .",
    "great !",
    "it was fine , nothing special , but the music was lovely and the ending surprised me .",
)

__all__ = ["DEFAULT_TEXTS", "add_export_parser", "export_onnx", "onnx_outputs", "onnx_session", "quantize_onnx",
           "run_export"]


def _require_deploy() -> None:
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if _find_spec(m) is None]
    if missing:
        raise ImportError(f"Exporting to ONNX needs {', '.join(missing)}: {DEPLOY_EXTRA}.")


def _find_spec(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress lines, its warnings and transformers' load reports."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        hf_logging.set_verbosity(verbosity)


# ----------------------------------------------------------------------------------------------------------
# loading


def load_for_export(model_dir: str | Path) -> tuple[torch.nn.Module, Any, str]:
    """``(model in eval mode, tokenizer, kind)`` for a BERT/DistilBERT directory; ``kind`` is ``"classifier"``
    (``*ForSequenceClassification``: the logits are exported) or ``"encoder"`` (anything else: the encoder's
    ``last_hidden_state``)."""
    import transformers

    from .hf import check_model_dir

    directory = Path(model_dir)
    config = check_model_dir(directory, "model")  # a BERT or DistilBERT directory, or a one-line error
    no_tokenizer = ValueError(f"{directory} has no tokenizer: save it beside the weights "
                              f"(studentbert.save_pretrained(model, dir, tokenizer)).")
    if not any((directory / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        raise no_tokenizer
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError, TypeError):
        raise no_tokenizer from None
    classifier = any(a.endswith("ForSequenceClassification") for a in config.architectures or [])
    cls = transformers.AutoModelForSequenceClassification if classifier else transformers.AutoModel
    try:
        with _quiet():
            model = cls.from_pretrained(directory)
    except OSError:
        raise FileNotFoundError(f"{directory} has no weights (model.safetensors or pytorch_model.bin).") from None
    return model.eval(), tokenizer, "classifier" if classifier else "encoder"


class _Outputs(torch.nn.Module):
    """The model with positional tensor inputs and one tensor output (what an ONNX graph has)."""

    def __init__(self, model: torch.nn.Module, kind: str, token_types: bool) -> None:
        super().__init__()
        self.model, self.kind, self.token_types = model, kind, token_types

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {"token_type_ids": token_type_ids} if self.token_types else {}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        return out.logits if self.kind == "classifier" else out.last_hidden_state


def _input_names(model: torch.nn.Module) -> list[str]:
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if model.config.model_type == "bert" else [])


# ----------------------------------------------------------------------------------------------------------
# export, quantization, inference


def export_graph(model: torch.nn.Module, kind: str, path: str | Path, opset: int = 18) -> Path:
    """Trace ``model`` (a ``transformers`` BERT/DistilBERT) into one ONNX file with dynamic batch and length."""
    _require_deploy()
    names = _input_names(model)
    # batch 2 and length 8 with padding: torch.export would specialise a dimension of size 1
    example = torch.randint(5, min(100, model.config.vocab_size), (2, 8))
    mask = torch.ones_like(example)
    mask[1, 5:] = 0
    inputs = (example, mask, torch.zeros_like(example))[: len(names)]
    batch = torch.export.Dim("batch", max=4096)
    length = torch.export.Dim("sequence", max=model.config.max_position_embeddings)
    dynamic = {name: {0: batch, 1: length} for name in names}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            _Outputs(model, kind, "token_type_ids" in names).eval(), inputs, None, dynamo=True, opset_version=opset,
            input_names=names, output_names=["logits" if kind == "classifier" else "last_hidden_state"],
            dynamic_shapes={"input_ids": dynamic["input_ids"], "attention_mask": dynamic["attention_mask"],
                            **({"token_type_ids": dynamic["token_type_ids"]} if len(names) == 3 else {})})
        program.save(str(path), external_data=False)  # one self-contained file (< 2 GB for BERT-base)
    return path


def quantize_onnx(source: str | Path, target: str | Path) -> Path:
    """``onnxruntime``'s dynamic int8 quantization: int8 weights (per tensor), activations quantized at run time."""
    _require_deploy()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return Path(target)


def onnx_session(path: str | Path, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU with every graph optimisation (fusions, constant folding)
    and ``threads`` intra-op threads (default: torch's ``get_num_threads()``, so both runtimes get the same)."""
    _require_deploy()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_outputs(session, encoded: dict[str, np.ndarray]) -> np.ndarray:
    """Run ``session`` on tokenizer output (numpy arrays), passing only the inputs the graph declares."""
    wanted = [i.name for i in session.get_inputs()]
    feed = {name: np.asarray(encoded[name], dtype=np.int64) if name in encoded
            else np.zeros_like(np.asarray(encoded["input_ids"]), dtype=np.int64) for name in wanted}
    return session.run(None, feed)[0]


def _encode(tokenizer, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    return dict(tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np"))


@torch.no_grad()
def _torch_outputs(model: torch.nn.Module, kind: str, encoded: dict[str, np.ndarray]) -> np.ndarray:
    names = _input_names(model)
    tensors = [torch.from_numpy(np.asarray(encoded.get(n, np.zeros_like(encoded["input_ids"])), dtype=np.int64))
               for n in names]
    return _Outputs(model, kind, len(names) == 3).eval()(*tensors).float().numpy()


def compare_outputs(reference: np.ndarray, other: np.ndarray, kind: str, mask: np.ndarray | None = None) -> dict:
    """Largest absolute difference (at real tokens for an encoder) and, for logits, the agreement of arg-max."""
    diff = np.abs(reference - other)
    if kind == "encoder" and mask is not None:
        diff = diff[np.asarray(mask, dtype=bool)]
    out: dict[str, Any] = {"max_abs_diff": float(diff.max())}
    if kind == "classifier":
        out["agreement"] = float((reference.argmax(-1) == other.argmax(-1)).mean())
    return out


def export_onnx(model_dir: str | Path, output_dir: str | Path, int8: bool = False, texts: Sequence[str] | None = None,
                max_length: int = 128, atol: float = 1e-4, opset: int = 18) -> dict[str, Any]:
    """Export ``model_dir`` to ``output_dir`` (``model.onnx``, ``model_int8.onnx`` with ``int8``, tokenizer,
    ``config.json``, ``export.json``) and check the graphs against PyTorch on ``texts``.

    Args:
        model_dir: a BERT/DistilBERT Hugging Face directory with its tokenizer.
        output_dir: created if needed; files of an earlier export are replaced.
        int8: also write the dynamically quantized graph.
        texts: the sentences of the check (default :data:`DEFAULT_TEXTS`), tokenised as one padded batch.
        max_length: truncation length of the check.
        atol: the largest absolute difference allowed between the fp32 graph's outputs and PyTorch's.
        opset: the ONNX opset.

    Returns (and writes to ``export.json``): ``kind``, ``files`` (name -> MB), ``fp32`` (``max_abs_diff``,
    ``agreement`` for a classifier, ``passed``: within ``atol``), ``int8`` (the same, no pass/fail: int8 is
    expected to differ), ``atol``, ``num_texts``, ``model_dir``.
    """
    _require_deploy()
    texts = list(DEFAULT_TEXTS if texts is None else texts)
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise ValueError("texts must be a non-empty list of non-empty strings (the sentences of the check).")
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2, got {max_length!r}.")
    model, tokenizer, kind = load_for_export(model_dir)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output-dir {output_dir} exists and is not a directory.")
    max_length = min(max_length, model.config.max_position_embeddings)
    fp32_path = export_graph(model, kind, output_dir / FP32_FILE, opset=opset)
    files = {FP32_FILE: fp32_path}
    if int8:
        files[INT8_FILE] = quantize_onnx(fp32_path, output_dir / INT8_FILE)
    elif (output_dir / INT8_FILE).exists():
        (output_dir / INT8_FILE).unlink()  # an older int8 graph would not match the new fp32 one
    tokenizer.save_pretrained(output_dir)
    model.config.save_pretrained(output_dir)

    encoded = _encode(tokenizer, texts, max_length)
    reference = _torch_outputs(model, kind, encoded)
    report: dict[str, Any] = {"kind": kind, "model_dir": str(Path(model_dir).resolve()), "atol": atol,
                              "num_texts": len(texts), "max_length": max_length, "opset": opset,
                              "files": {name: os.path.getsize(p) / 1e6 for name, p in files.items()}}
    for label, path in files.items():
        result = compare_outputs(reference, onnx_outputs(onnx_session(path), encoded), kind,
                                 encoded.get("attention_mask"))
        if label == FP32_FILE:
            result["passed"] = bool(result["max_abs_diff"] <= atol)
        report["fp32" if label == FP32_FILE else "int8"] = result
    (output_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


# ----------------------------------------------------------------------------------------------------------
# command line (wired into ``studentbert export`` by cli.py)


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    e = subparsers.add_parser("export", help="export a classifier or encoder to ONNX (fp32, optionally int8) with "
                                             "its tokenizer, checked against PyTorch")
    e.add_argument("--model", type=Path, required=True,
                   help="Hugging Face directory of a BERT/DistilBERT classifier (or encoder) with its tokenizer")
    e.add_argument("--output-dir", type=Path, default=Path("runs/onnx"))
    e.add_argument("--int8", action="store_true", help="also write model_int8.onnx (onnxruntime dynamic int8)")
    e.add_argument("--texts-file", type=Path, help="sentences of the check, one a line (default: a few built in)")
    e.add_argument("--max-length", type=int, default=128, help="truncation length of the check")
    e.add_argument("--atol", type=float, default=1e-4, help="largest fp32 difference from PyTorch allowed")
    e.add_argument("--opset", type=int, default=18)
    return e


def run_export(args: argparse.Namespace) -> int:
    """``studentbert export``: export, print the check; 0 when the fp32 graph matches PyTorch, else 1."""
    texts = None
    if args.texts_file is not None:
        if not Path(args.texts_file).is_file():
            raise FileNotFoundError(f"--texts-file {args.texts_file} does not exist.")
        texts = [line.strip() for line in Path(args.texts_file).read_text().splitlines() if line.strip()]
        if not texts:
            raise ValueError(f"--texts-file {args.texts_file} holds no sentences.")
    report = export_onnx(args.model, args.output_dir, int8=args.int8, texts=texts, max_length=args.max_length,
                         atol=args.atol, opset=args.opset)
    for name, mb in report["files"].items():
        print(f"wrote {Path(args.output_dir) / name} ({mb:.1f} MB)")
    fp32 = report["fp32"]
    print(f"fp32 vs PyTorch on {report['num_texts']} sentences: largest difference {fp32['max_abs_diff']:.2e} "
          f"(allowed {report['atol']:.0e}): {'passed' if fp32['passed'] else 'FAILED'}")
    if "int8" in report:
        q = report["int8"]
        agree = f", predictions agree on {q['agreement']:.1%}" if "agreement" in q else ""
        print(f"int8 vs PyTorch: largest difference {q['max_abs_diff']:.2e}{agree}")
    print(f"report: {Path(args.output_dir) / REPORT_FILE}")
    return 0 if fp32["passed"] else 1
