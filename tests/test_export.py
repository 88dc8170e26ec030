"""Exports (.pt2 and ONNX) give the eager model's outputs, at the example's batch size and another."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from ldl.measure.export import (
    ExportMismatch,
    OnnxModel,
    _has_dynamic_batch,
    check_export,
    export_onnx,
    export_program,
    load_program,
)


def realistic(model: nn.Module, image_size: int) -> nn.Module:
    """Give ``model`` batch-norm statistics measured on data, and outputs of about 0.1.

    Freshly built networks output almost nothing (mobilenet_v3_small's logits are ~1e-10):
    a 1e-5 tolerance would then pass anything. At ~0.1 it is a 1e-4 relative check, while
    float32 rounding over some 50 layers (~1e-5 relative) stays well below it.
    """
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # a plain average over the batches seen
            module.reset_running_stats()
        if isinstance(module, nn.Linear):
            module.reset_parameters()
    batch = torch.rand(8, 3, image_size, image_size) * 2 - 1
    output_layer = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
    with torch.no_grad():
        model.train()(batch)
        scale = 0.1 / model.eval()(batch).abs().max()
        output_layer.weight *= scale
        output_layer.bias *= scale
    return model


def recap_cnn() -> nn.Module:
    from ldl.models import RecapCNN

    return RecapCNN(num_classes=2, image_size=64)


def mobilenet_v3_small() -> nn.Module:
    return torchvision.models.mobilenet_v3_small(weights=None, num_classes=2)


def efficientnet_lite0() -> nn.Module:
    efficientnet_lite_pytorch = pytest.importorskip("efficientnet_lite_pytorch")
    # image_size fixes its "same" padding; 64 px instead of 224 keeps the eager runs quick.
    return efficientnet_lite_pytorch.EfficientNet.from_name("efficientnet-lite0", num_classes=2, image_size=64)


MODELS = {"recap_cnn": recap_cnn, "mobilenet_v3_small": mobilenet_v3_small, "efficientnet_lite0": efficientnet_lite0}
IMAGE_SIZE = 64


@dataclass
class Exported:
    model: nn.Module
    example: torch.Tensor  # (2, 3, S, S)
    program_path: Path
    onnx_path: Path
    program: nn.Module  # loaded from program_path (loading takes about a second)


@pytest.fixture(scope="module", autouse=True)
def signing_key_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """export_program signs with a per-user key under XDG_CACHE_HOME: keep it out of the real home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="module", params=list(MODELS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Each model exported once to .pt2 and ONNX, shared by the tests below."""
    model = realistic(MODELS[request.param](), IMAGE_SIZE).train()  # exports must not depend on the caller's mode
    example = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    folder = tmp_path_factory.mktemp(request.param)
    program_path = export_program(model, example, folder / "model.pt2")
    onnx_path = export_onnx(model, example, folder / "model.onnx")
    return Exported(model, example, program_path, onnx_path, load_program(program_path))


def test_export_leaves_the_callers_model_as_it_was(exported: Exported) -> None:
    assert exported.model.training  # still in train mode: the export used an eval copy
    assert sorted(p.name for p in exported.onnx_path.parent.iterdir()) == [
        "model.onnx", "model.pt2", "model.pt2.ldl.json"]  # the .pt2's record, checked when it loads


def eager_outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's eval-mode outputs; its mode is put back afterwards."""
    was_training = model.training
    with torch.no_grad():
        outputs = model.eval()(x)
    model.train(was_training)
    return outputs


def test_program_matches_the_eager_model_at_two_batch_sizes(exported: Exported) -> None:
    assert _has_dynamic_batch(exported.program)  # so check_export also tries batch size 3
    assert check_export(exported.model, exported.program, exported.example) <= 1e-5
    three = torch.cat([exported.example, exported.example[:1].flip(-2)])
    expected = eager_outputs(exported.model, three)
    assert expected.abs().max() > 1e-2  # large enough for the tolerance to mean something
    assert torch.allclose(exported.program(three), expected, atol=1e-5, rtol=0)


def test_onnx_matches_the_eager_model_at_two_batch_sizes(exported: Exported) -> None:
    onnx_model = OnnxModel(exported.onnx_path)
    assert onnx_model.dynamic_batch and _has_dynamic_batch(onnx_model)
    assert check_export(exported.model, onnx_model, exported.example) <= 1e-5
    three = torch.cat([exported.example, exported.example[:1].flip(-2)])
    assert torch.allclose(onnx_model(three), eager_outputs(exported.model, three), atol=1e-5, rtol=0)


def test_check_export_raises_on_a_different_model(exported: Exported) -> None:
    program = exported.program
    nudged = copy.deepcopy(exported.model)
    last_linear = [module for module in nudged.modules() if isinstance(module, nn.Linear)][-1]
    with torch.no_grad():
        last_linear.bias += 0.01  # every logit moves by 0.01, a thousand times the tolerance
    with pytest.raises(ExportMismatch, match=r"differ from the eager model's by up to 0.01") as error:
        check_export(nudged, program, exported.example)
    assert isinstance(error.value, AssertionError)  # so a plain `assert`-style test reports it


# ---------------------------------------------------------------- a tiny model: options and errors


def tiny() -> nn.Module:
    """(B, 3, 8, 8) -> (B, 2), with batch norm: eval and train mode differ."""
    torch.manual_seed(0)
    return realistic(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)), 8)


def test_a_static_export_is_checked_at_its_own_batch_size_only(tmp_path: Path) -> None:
    model, example = tiny(), torch.randn(2, 3, 8, 8)
    program = load_program(export_program(model, example, tmp_path / "static.pt2", dynamic_batch=False))
    assert not _has_dynamic_batch(program)
    assert check_export(model, program, example) <= 1e-5
    with pytest.raises(Exception):  # the batch size is part of this program
        program(torch.randn(3, 3, 8, 8))
    onnx_model = OnnxModel(export_onnx(model, example, tmp_path / "static.onnx", dynamic_batch=False))
    assert not onnx_model.dynamic_batch
    assert check_export(model, onnx_model, example) <= 1e-5


def test_a_dynamic_export_needs_an_example_of_two_or_more(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"batch size 1.*at least 2.*images\[:2\]"):
        export_program(tiny(), torch.randn(1, 3, 8, 8), tmp_path / "model.pt2")
    with pytest.raises(ValueError, match="at least 2"):
        export_onnx(tiny(), torch.randn(1, 3, 8, 8), tmp_path / "model.onnx")
    assert not list(tmp_path.iterdir())


def test_a_program_file_must_end_in_pt2(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.pt2"):
        export_program(tiny(), torch.randn(2, 3, 8, 8), tmp_path / "model.pt")


def test_missing_files_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"export_program\(model, example, path\)"):
        load_program(tmp_path / "missing.pt2")
    with pytest.raises(FileNotFoundError, match=r"export_onnx\(model, example, path\)"):
        OnnxModel(tmp_path / "missing.onnx")


def test_missing_onnx_packages_say_which_extra_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r'pip install "ldl\[export\]"'):
        OnnxModel(tmp_path / "model.onnx")
    with pytest.raises(ImportError, match=r"onnxscript.*ldl\[export\]"):
        export_onnx(tiny(), torch.randn(2, 3, 8, 8), tmp_path / "model.onnx")


def test_a_failed_export_leaves_the_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, example = tiny(), torch.randn(2, 3, 8, 8)
    path = export_program(model, example, tmp_path / "model.pt2")
    before = path.read_bytes()

    def crashing_save(program, file, *args, **kwargs) -> None:
        Path(file).write_bytes(b"half a program")  # some bytes reach the disk, then it "dies"
        raise OSError("disk full")

    monkeypatch.setattr(torch.export, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        export_program(nn.Sequential(model, nn.ReLU()), example, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    # No temporary folder left, and the record still matches the old program.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt2", "model.pt2.ldl.json"]
    assert check_export(model, load_program(path), example) <= 1e-5


def test_only_torchs_known_export_noise_is_hidden() -> None:
    # torch 2.11 (Colab's) warns about its own internals while exporting and loading: hidden.
    # Anything else, e.g. a warning about the student's model, must still show.
    import warnings

    from ldl.measure.export import _without_known_export_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _without_known_export_noise():
            warnings.warn("The given buffer is not writable, and PyTorch does not support ...", UserWarning)
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
            warnings.warn("this model has a layer that cannot be exported", UserWarning)
        warnings.warn("The given buffer is not writable (outside an export)", UserWarning)
    assert [str(w.message) for w in caught] == [
        "this model has a layer that cannot be exported", "The given buffer is not writable (outside an export)"]


# ---------------------------------------------------------------- loading only what the course wrote


class RunsCodeWhenUnpickled:
    """A stand-in for a booby-trapped payload: unpickling it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def rezipped(source: Path, target: Path, replace: dict[str, bytes] | None = None) -> Path:
    """``source``'s archive entries written again by Python's zipfile: other bytes, same program."""
    import zipfile

    replace = replace or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for name in old.namelist():
            suffix = next((key for key in replace if name.endswith(key)), None)
            new.writestr(name, replace[suffix] if suffix else old.read(name))
    return target


def booby_trapped(source: Path, target: Path, marker: Path) -> Path:
    """``source`` with its sample inputs swapped for a pickle that runs code when loaded.

    torch.export.load reads the sample inputs with weights_only=True and, when that fails,
    again with weights_only=False: the fallback runs the payload.
    """
    import io

    buffer = io.BytesIO()
    torch.save(RunsCodeWhenUnpickled(marker), buffer)
    return rezipped(source, target, {"data/sample_inputs/model.pt": buffer.getvalue()})


@pytest.fixture
def own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh signing key for this test, as on another account or machine."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_program_written_by_export_program_loads_and_keeps_a_record(tmp_path: Path, own_key: Path) -> None:
    model, example = tiny(), torch.randn(2, 3, 8, 8)
    path = export_program(model, example, tmp_path / "model.pt2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "model.pt2", "model.pt2.ldl.json"]
    assert check_export(model, load_program(path), example) <= 1e-5


def test_a_booby_trapped_program_is_refused_without_running_its_code(tmp_path: Path, own_key: Path) -> None:
    from ldl.measure.export import UntrustedProgram

    path = export_program(tiny(), torch.randn(2, 3, 8, 8), tmp_path / "model.pt2")
    marker = tmp_path / "code-ran"
    booby_trapped(path, tmp_path / "swapped.pt2", marker).replace(path)  # its record stays beside it
    with pytest.raises(UntrustedProgram, match=r"model\.pt2.*changed since.*trusted=True only for a file from a source you trust"):
        load_program(path)
    assert not marker.exists()
    # What the refusal protects against: loading it anyway runs the code.
    with pytest.raises(Exception):
        load_program(path, trusted=True)
    assert marker.read_text() == "ran"


def test_changed_bytes_are_refused_and_load_when_trusted(tmp_path: Path, own_key: Path) -> None:
    from ldl.measure.export import UntrustedProgram

    model, example = tiny(), torch.randn(2, 3, 8, 8)
    path = export_program(model, example, tmp_path / "model.pt2")
    rezipped(path, tmp_path / "same-program.pt2").replace(path)
    with pytest.raises(UntrustedProgram, match=r"model\.pt2.*changed since"):
        load_program(path)
    assert check_export(model, load_program(path, trusted=True), example) <= 1e-5


def test_a_program_the_course_did_not_write_is_refused_and_loads_when_trusted(tmp_path: Path, own_key: Path) -> None:
    from ldl.measure.export import UntrustedProgram

    model, example = tiny(), torch.randn(2, 3, 8, 8)
    path = tmp_path / "downloaded.pt2"
    torch.export.save(torch.export.export(model.eval(), (example,)), path)
    with pytest.raises(UntrustedProgram, match=r"downloaded\.pt2.*no record downloaded\.pt2\.ldl\.json.*"
                                               r"Pass trusted=True only for a file from a source you trust"):
        load_program(path)
    assert check_export(model, load_program(path, trusted=True), example) <= 1e-5


def test_a_record_that_travels_with_the_file_or_is_forged_is_refused(
        tmp_path: Path, own_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import json

    from ldl.measure.export import UntrustedProgram

    path = export_program(tiny(), torch.randn(2, 3, 8, 8), tmp_path / "model.pt2")
    record = tmp_path / "model.pt2.ldl.json"
    # The same two files on another account or machine: its key did not sign the record.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(UntrustedProgram, match=r"model\.pt2.*not signed.*this user account on this machine"):
        load_program(path)
    # A record written by hand with the file's true SHA-256 proves nothing either.
    forged = json.loads(record.read_text())
    forged["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    record.write_text(json.dumps(forged))
    with pytest.raises(UntrustedProgram, match="not signed"):
        load_program(path)
    record.write_text("{not json")
    with pytest.raises(UntrustedProgram, match=r"record model\.pt2\.ldl\.json is unreadable"):
        load_program(path)


def test_without_a_writable_key_folder_programs_load_in_the_same_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Works as root too: a folder cannot be made under a plain file.
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    model, example = tiny(), torch.randn(2, 3, 8, 8)
    path = export_program(model, example, tmp_path / "model.pt2")
    assert check_export(model, load_program(path), example) <= 1e-5
