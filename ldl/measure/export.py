"""Exporting a trained model for serving, each export checked against the eager model.

Three ways to keep a model, for three jobs:

- **the state dict** (``ldl.train.save_weights``): the recommended way to keep and share
  weights. Small and safe to load (``weights_only=True``), but it needs the model's Python
  class to rebuild the network.
- **.pt2** (:func:`export_program`, ``torch.export``): the whole computation as a graph of
  standard operators, no Python class needed. It is the input to ExecuTorch (phones,
  microcontrollers) and to AOTInductor (compiled C++ serving); ``load_program`` runs it
  in PyTorch. Opening a ``.pt2`` runs code stored in it, so ``load_program`` opens only
  files that ``export_program`` wrote for this user on this machine (see below).
- **ONNX** (:func:`export_onnx`): the open exchange format, for serving in any runtime
  (ONNX Runtime, TensorRT, OpenVINO, the browser) with no PyTorch at all. Needs the extra
  ``pip install "ldl[export]"``.

Exports are made from a CPU copy in eval mode (batch norm uses its running statistics,
dropout is off), so the caller's model is left as it was. By default the batch dimension
stays free (``torch.export.Dim``): the exported model takes any number of images, while
the other dimensions are fixed to the example's. An export is only trusted once
:func:`check_export` has compared it with the eager model.

TorchScript (``torch.jit.trace``/``script``) is deprecated: ``torch.export`` replaces it.

Why a ``.pt2`` is not opened blindly: ``torch.export.load`` unpickles parts of the archive
(its sample inputs fall back to ``weights_only=False``; tensor subclasses and custom
objects are plain pickles) and evaluates the shape formulas of its graph with
``sympy.sympify``, which calls ``eval``. A ``.pt2`` can therefore run any code when it is
opened, and its format offers no ``weights_only`` path: keeping the weights apart would not
help, since the graph itself is evaluated. So :func:`export_program` writes beside
``model.pt2`` a record ``model.pt2.ldl.json`` with the file's SHA-256, signed (HMAC) with
a random key kept in ``~/.cache/ldl`` (``$XDG_CACHE_HOME/ldl``), readable by this user
only; :func:`load_program` opens a file only when its bytes still match a record signed
with that key. A record is worth nothing without the key, so a file and record copied from
elsewhere, or a record written by hand, are refused too. ``load_program(path,
trusted=True)`` skips the check: only for a file from a source one trusts.

>>> example = images[:2]                                     # (2, 3, 224, 224) float32
>>> export_onnx(model, example, "model.onnx")
>>> check_export(model, OnnxModel("model.onnx"), example)    # max |difference|, e.g. 2e-07
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import io
import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from ldl.core.files import write_atomically, write_json_atomically

INSTALL_HINT = 'pip install "ldl[export]"'
# A single ONNX file is one protobuf message, which cannot exceed 2 GiB: bigger models keep
# their weights in a side file. Leave some room for the graph itself.
ONNX_SINGLE_FILE_BYTES = 2**31 - 2**26


# Warnings that torch's own export code raises about itself on some versions (2.11, Colab's):
# nothing in the student's model causes them and nothing they can do removes them, so a red
# box under the cell would only alarm. Later torch versions no longer raise them.
KNOWN_EXPORT_NOISE = (
    # torch.export.load reads weights from a read-only buffer it then never writes to.
    (UserWarning, r"The given buffer is not writable"),
    # torch's pytree internals calling their own deprecated LeafSpec check during the ONNX export.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
)


@contextlib.contextmanager
def _without_known_export_noise() -> Iterator[None]:
    """Hide only :data:`KNOWN_EXPORT_NOISE`; every other warning still shows."""
    with warnings.catch_warnings():
        for category, message in KNOWN_EXPORT_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


class UntrustedProgram(ValueError):
    """A ``.pt2`` file that :func:`export_program` did not write here, or that changed since."""


class ExportMismatch(AssertionError):
    """The exported model's outputs differ from the eager model's by more than the tolerance."""


def _eval_copy(model: nn.Module) -> nn.Module:
    """A CPU copy of ``model`` in eval mode: exporting and checking never touch the caller's model."""
    return copy.deepcopy(model).cpu().eval()


def _batch_shapes(example: Tensor, dynamic_batch: bool) -> tuple[dict[int, torch.export.Dim]] | None:
    """``dynamic_shapes`` for one input whose dimension 0 (the batch) may take any size."""
    if not dynamic_batch:
        return None
    if example.shape[0] < 2:
        raise ValueError(
            f"The example has batch size {example.shape[0]}; a dynamic batch needs at least 2, "
            "because torch.export treats a size of 1 as a constant. Pass e.g. images[:2], or "
            "dynamic_batch=False for a model that only ever takes this batch size."
        )
    return ({0: torch.export.Dim("batch")},)


def export_program(model: nn.Module, example: Tensor, path: str | Path, *, dynamic_batch: bool = True) -> Path:
    """Export ``model`` with ``torch.export`` and save it as a ``.pt2`` file.

    Args:
        model: the network; a CPU eval-mode copy is exported, ``model`` is left unchanged.
        example: an input batch, e.g. ``(2, 3, H, W)`` float32; it fixes every size but the batch.
        path: where to write, ending in ``.pt2``.
        dynamic_batch: let the exported program take any batch size (needs an example of 2+).
    """
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"{path}: an exported program is saved as a .pt2 file; use e.g. {path.with_suffix('.pt2')}.")
    shapes = _batch_shapes(example, dynamic_batch)
    with _without_known_export_noise():
        program = torch.export.export(_eval_copy(model), (example.detach().cpu(),), dynamic_shapes=shapes)
    digests: list[str] = []

    def save_and_hash(file: Path) -> None:
        torch.export.save(program, file)
        digests.append(_sha256(file.read_bytes()))  # the bytes that are renamed into place

    write_atomically(path, save_and_hash)
    # Written after the program: a crash in between leaves a program that is refused, not
    # one that loads unchecked.
    write_json_atomically(record_path(path), _signed_record(path, digests[0]))
    return path


def load_program(path: str | Path, *, trusted: bool = False) -> nn.Module:
    """Load a ``.pt2`` file written by :func:`export_program`: a module, called like the model.

    Args:
        path: the ``.pt2`` file.
        trusted: open a file that :func:`export_program` did not write for this user on this
            machine (e.g. one downloaded or sent by a colleague). Opening a ``.pt2`` runs
            code stored in it: pass ``True`` only for a file from a source you trust.

    Raises:
        UntrustedProgram: without ``trusted``, the file has no record signed here, or its
            bytes changed since the record was written.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No exported program at {path}. Make one with export_program(model, example, path).")
    data = path.read_bytes()  # checked and loaded from the same bytes: no swap in between
    problem = None if trusted else _record_problem(path, data)
    if problem:
        raise UntrustedProgram(
            f"Not loading {path}: {problem}. Opening a .pt2 file runs code stored in it, so "
            "load_program opens only files that export_program wrote for this user on this machine, "
            "unchanged since. Pass trusted=True only for a file from a source you trust: "
            "load_program(path, trusted=True)."
        )
    with _without_known_export_noise():
        return torch.export.load(io.BytesIO(data)).module()


KEY_BYTES = 32
# A key for processes that cannot keep one on disk (a read-only home): their records are
# good for this Python process only.
_SESSION_KEY = secrets.token_bytes(KEY_BYTES)


def record_path(program: str | Path) -> Path:
    """The record beside a program: ``model.pt2`` -> ``model.pt2.ldl.json``."""
    program = Path(program)
    return program.with_name(program.name + ".ldl.json")


def _key_path() -> Path:
    """Where this user's signing key lives: ``$XDG_CACHE_HOME/ldl``, else ``~/.cache/ldl``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "ldl" / "export-signing.key"


def _signing_key() -> bytes:
    """This user's secret key, made on first use; the session's key where none can be kept."""
    path = _key_path()
    try:
        if not path.is_file():
            _create_key(path)
        key = path.read_bytes()
    except OSError:
        return _SESSION_KEY
    return key if len(key) == KEY_BYTES else _SESSION_KEY


def _create_key(path: Path) -> None:
    """Write a random key readable by its owner only; a key another process made first wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not ldl.core.files' atomic write: its rename would replace a key that records were
    # already signed with. os.link publishes the whole file, or fails if a key is there.
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    handle = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(secrets.token_bytes(KEY_BYTES))
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _signature(digest: str) -> str:
    return hmac.new(_signing_key(), digest.encode(), hashlib.sha256).hexdigest()


def _signed_record(program: Path, digest: str) -> dict[str, str]:
    """What :func:`export_program` writes beside ``program``."""
    return {"file": program.name, "sha256": digest, "hmac_sha256": _signature(digest),
            "note": "written by ldl.measure.export_program; load_program checks it before opening the file"}


def _record_problem(program: Path, data: bytes) -> str | None:
    """Why ``data`` (the bytes of ``program``) is not known to be export_program's, or None."""
    record = record_path(program)
    if not record.is_file():
        return f"export_program wrote no record {record.name} beside it"
    try:
        fields = json.loads(record.read_text(encoding="utf-8"))
        recorded, signature = str(fields["sha256"]), str(fields["hmac_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"its record {record.name} is unreadable"
    if not hmac.compare_digest(signature, _signature(recorded)):
        return (f"its record {record.name} was not signed by export_program for this user account "
                "on this machine (it was copied with the file, or written by hand)")
    if not hmac.compare_digest(recorded, _sha256(data)):
        return "its bytes changed since export_program wrote it"
    return None


def export_onnx(model: nn.Module, example: Tensor, path: str | Path, *, dynamic_batch: bool = True) -> Path:
    """Export ``model`` to an ONNX file with the ``torch.export``-based exporter (``dynamo=True``).

    Same arguments as :func:`export_program`. The graph has one input, ``images``, and one
    output, ``outputs``. Models under 2 GB are written as one self-contained file.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs both; fail early with the fix)
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(f"Exporting to ONNX needs the packages onnx and onnxscript: {INSTALL_HINT}") from error
    path = Path(path)
    shapes = _batch_shapes(example, dynamic_batch)
    with _without_known_export_noise():
        program = torch.onnx.export(
            _eval_copy(model), (example.detach().cpu(),), dynamo=True, dynamic_shapes=shapes,
            input_names=["images"], output_names=["outputs"], verbose=False,
        )
    weight_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return write_atomically(
        path, lambda file: program.save(file, external_data=weight_bytes > ONNX_SINGLE_FILE_BYTES))


class OnnxModel:
    """An ONNX file run by ONNX Runtime on the CPU, called like the PyTorch model.

    >>> model = OnnxModel("model.onnx")
    >>> logits = model(images)         # (B, 3, H, W) float32 tensor -> (B, num_classes) tensor
    """

    def __init__(self, path: str | Path) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(f"Running an ONNX model needs the package onnxruntime: {INSTALL_HINT}") from error
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"No ONNX file at {self.path}. Make one with export_onnx(model, example, path).")
        self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @property
    def dynamic_batch(self) -> bool:
        """True when the file's batch dimension is named (any size), not a number."""
        return not isinstance(self.session.get_inputs()[0].shape[0], int)

    def __call__(self, x: Tensor) -> Tensor:
        """``(B, ...)`` tensor in, the graph's first output as a CPU tensor out."""
        outputs = self.session.run(None, {self.input_name: x.detach().cpu().contiguous().numpy()})
        return torch.from_numpy(outputs[0])

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, dynamic_batch={self.dynamic_batch})"


def _has_dynamic_batch(exported: Callable[[Tensor], Tensor]) -> bool:
    """Whether ``exported`` takes any batch size: an OnnxModel, or a program from load_program."""
    if isinstance(exported, OnnxModel):
        return exported.dynamic_batch
    if isinstance(exported, torch.fx.GraphModule):
        for node in exported.graph.nodes:
            if node.op == "placeholder":  # the first one is the input; its example value has a symbolic size
                value = node.meta.get("val")
                return value is not None and isinstance(value.shape[0], torch.SymInt)
    return False


def check_export(reference_model: nn.Module, exported: Callable[[Tensor], Tensor], example: Tensor,
                 *, atol: float = 1e-5) -> float:
    """The largest absolute difference between the eager model's outputs and the export's.

    Both run on the CPU, the eager model as an eval-mode copy without gradients, on
    ``example`` and, when the export takes any batch size, on a batch one larger (the
    example and a flipped copy of its first sample). Raises :class:`ExportMismatch` with
    the numbers when the difference is above ``atol`` (or NaN). float32 exports of a
    trained network with large logits may need a looser ``atol``, e.g. 1e-4.
    """
    reference = _eval_copy(reference_model)
    example = example.detach().cpu()
    batches = [example]
    if _has_dynamic_batch(exported):
        batches.append(torch.cat([example, example[:1].flip(-1)]))
    worst = 0.0
    for batch in batches:
        with torch.no_grad():
            expected, actual = reference(batch), exported(batch)
        if actual.shape != expected.shape:
            raise ExportMismatch(f"At batch size {len(batch)} the export returned shape {tuple(actual.shape)}, "
                                 f"the eager model {tuple(expected.shape)}.")
        difference = (actual.float() - expected.float()).abs().max().item()
        if not difference <= atol:  # written so that NaN fails too
            raise ExportMismatch(
                f"At batch size {len(batch)} the export's outputs differ from the eager model's by up to "
                f"{difference:.3g} (atol={atol:g}; outputs up to {expected.abs().max().item():.3g}). "
                "Was the export made from this model, in eval mode, with this input size?"
            )
        worst = max(worst, difference)
    return worst
