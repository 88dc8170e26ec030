"""Feature extraction: the features are the model's own outputs, they survive a save, a head learns on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ldl.measure.features import FeatureSet, extract_features, load_features, save_features
from ldl.train import Trainer, save_weights


class NamedDataset(TensorDataset):
    """A TensorDataset with class names, as an image-folder dataset has them."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> None:
        super().__init__(images, labels)
        self.classes = classes


def images_and_labels(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x (n, 3, 12, 12) float32, y (n,) int64 in {0, 1}: class 1 images are brighter in the red channel."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    images = torch.randn(n, 3, 12, 12, generator=generator)
    images[:, 0] += 1.5 * labels.view(n, 1, 1).float()
    return images, labels


def backbone() -> nn.Module:
    """A tiny 'pretrained base' ending in pooled features: (B, 3, H, W) -> (B, 6).

    Batch norm and dropout make train and eval mode give different outputs, so the test
    sees whether extraction really ran in eval mode.
    """
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.5),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


def calibrated_backbone() -> nn.Module:
    """The backbone with non-trivial batch-norm running statistics (as after pretraining)."""
    model = backbone()
    with torch.no_grad():
        model.train()(images_and_labels(64, seed=9)[0] * 3 + 1)
    return model


def test_features_are_the_models_eval_outputs_with_their_labels() -> None:
    images, labels = images_and_labels(20)
    loader = DataLoader(NamedDataset(images, labels, ["cat", "dog"]), batch_size=8)  # last batch: 4
    model = calibrated_backbone().train()
    feature_set = extract_features(model, loader, device="cpu", progress=False, info={"backbone": "tiny"})

    with torch.no_grad():
        expected = model.eval()(images)  # (20, 6)
    assert feature_set.features.shape == (20, 6) and feature_set.dim == 6 and len(feature_set) == 20
    assert feature_set.features.dtype == torch.float32 and feature_set.features.device.type == "cpu"
    assert torch.allclose(feature_set.features, expected, atol=1e-6)
    assert torch.equal(feature_set.labels, labels) and feature_set.labels.dtype == torch.int64
    assert feature_set.classes == ["cat", "dog"]
    assert feature_set.info["backbone"] == "tiny" and feature_set.info["seconds"] >= 0
    # Ordinary tensors, not inference tensors: a head can be trained on them.
    assert not feature_set.features.is_inference()


def test_the_models_train_or_eval_mode_is_restored() -> None:
    images, labels = images_and_labels(8)
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    model = backbone().train()
    extract_features(model, loader, device="cpu", progress=False)
    assert model.training and all(module.training for module in model.modules())
    model.eval()
    extract_features(model, loader, device="cpu", progress=False)
    assert not model.training


def test_a_model_that_does_not_pool_gets_a_clear_error_and_keeps_its_mode() -> None:
    images, labels = images_and_labels(8)
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    model = nn.Conv2d(3, 4, 3).train()  # (B, 4, 10, 10): a feature map, not a feature vector
    with pytest.raises(ValueError, match=r"\(4, 4, 10, 10\).*nn.Identity"):
        extract_features(model, loader, device="cpu", progress=False)
    assert model.training


def test_an_empty_loader_is_an_error() -> None:
    empty = DataLoader(TensorDataset(torch.zeros(0, 3, 12, 12), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="no batches"):
        extract_features(backbone(), empty, device="cpu", progress=False)


def test_feature_set_checks_shapes_and_makes_loaders() -> None:
    with pytest.raises(ValueError, match=r"labels must be \(N,\) = \(5,\)"):
        FeatureSet(torch.zeros(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="flatten"):
        FeatureSet(torch.zeros(5, 3, 2), torch.zeros(5, dtype=torch.long))
    features = torch.arange(20.0).view(10, 2)
    feature_set = FeatureSet(features, torch.arange(10) % 2, ["a", "b"])
    batches = list(feature_set.loader(batch_size=4))
    assert [x.shape for x, _ in batches] == [(4, 2), (4, 2), (2, 2)]
    assert torch.equal(torch.cat([x for x, _ in batches]), features)  # no shuffle: stored order
    order = [torch.cat([y for _, y in feature_set.loader(4, shuffle=True, generator=torch.Generator().manual_seed(3))])
             for _ in range(2)]
    assert torch.equal(order[0], order[1])  # the same generator seed, the same order
    assert "10 samples, dim=2" in repr(feature_set)


def test_save_and_load_round_trip_exactly_with_weights_only(tmp_path: Path) -> None:
    images, labels = images_and_labels(12)
    loader = DataLoader(NamedDataset(images, labels, ["cat", "dog"]), batch_size=5)
    feature_set = extract_features(calibrated_backbone(), loader, device="cpu", progress=False,
                                   info={"backbone": "tiny", "image_size": 12, "sizes": [1, 2]})
    path = save_features(feature_set, tmp_path / "features" / "train.pt")

    raw = torch.load(path, weights_only=True)  # raises if anything is not plain data
    assert set(raw) == {"format", "features", "labels", "classes", "info"}
    loaded = load_features(path)
    assert torch.equal(loaded.features, feature_set.features)
    assert torch.equal(loaded.labels, feature_set.labels)
    assert loaded.classes == ["cat", "dog"] and loaded.info == feature_set.info
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.pt"]  # no temporary file left


def test_info_that_weights_only_could_not_read_is_refused_before_writing(tmp_path: Path) -> None:
    feature_set = FeatureSet(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long),
                             info={"folder": Path("/data/cats")})
    with pytest.raises(TypeError, match=r"info\['folder'\] is a .*Path.*str\(value\)"):
        save_features(feature_set, tmp_path / "f.pt")
    assert not list(tmp_path.iterdir())


class NotPlainData:
    """An arbitrary object: weights_only refuses to unpickle it."""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a torch file", "not a readable feature file"),
        ("weights", r"not a feature file: expected a dict with keys \['format', 'features'"),
        ("object", "not a readable feature file"),
        ("list", "not a feature file.*found a list"),
    ],
)
def test_a_file_that_is_not_a_feature_file_gets_a_clear_error(tmp_path: Path, content, message: str) -> None:
    path = tmp_path / "file.pt"
    if content == "weights":
        save_weights(nn.Linear(3, 2), path)  # a real torch file, but model weights
    elif content == "object":
        torch.save({"format": "ldl-features-1", "info": NotPlainData()}, path)
    elif content == "list":
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        load_features(path)
    assert "save_features(extract_features(" in str(error.value)  # says how to make one


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"No feature file.*save_features"):
        load_features(tmp_path / "missing.pt")


def test_a_head_trained_on_features_learns_a_separable_problem() -> None:
    frozen = calibrated_backbone()
    train_images, train_labels = images_and_labels(160, seed=1)
    val_images, val_labels = images_and_labels(80, seed=2)
    train = extract_features(frozen, DataLoader(TensorDataset(train_images, train_labels), batch_size=32),
                             device="cpu", progress=False)
    val = extract_features(frozen, DataLoader(TensorDataset(val_images, val_labels), batch_size=32),
                           device="cpu", progress=False)

    torch.manual_seed(0)
    head = nn.Linear(train.dim, 2)
    trainer = Trainer(head, optimizer=torch.optim.Adam(head.parameters(), lr=0.05), device="cpu",
                      progress=False, verbose=False)
    history = trainer.fit(train.loader(batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)),
                          val.loader(), epochs=6)

    with torch.no_grad():
        accuracy = (head(val.features).argmax(1) == val.labels).float().mean().item()
    assert accuracy > 0.9, f"validation accuracy of the head: {accuracy:.2f}"
    assert history["train_loss"][-1] < history["train_loss"][0]  # it learned: the loss fell
