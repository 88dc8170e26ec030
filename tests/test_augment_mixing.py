"""MixUp, CutMix, Mosaic: soft labels that sum to 1 and match the pixels each image gives."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torchvision.transforms import v2

from ldl.augment import (
    CutMix,
    CutMixParams,
    MixingLoader,
    MixUp,
    MixUpParams,
    Mosaic,
    MosaicParams,
    cutmix_box,
    soft_labels,
)
from ldl.data.loader import DeviceLoader
from ldl.plots import show_mixed_batch
from ldl.train import Trainer

B, H, W = 6, 12, 16


def constant_batch(dtype: torch.dtype = torch.uint8) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``i`` is filled with the value ``10 * (i + 1)`` and is alone in class ``i``."""
    values = 10 * (torch.arange(B) + 1)
    images = values.view(B, 1, 1, 1).expand(B, 3, H, W).to(dtype).contiguous()
    return images, torch.arange(B)


def pixel_shares(mixed: torch.Tensor) -> torch.Tensor:
    """``(B, B)``: the fraction of the pixels of output ``i`` that came from image ``j``."""
    values = 10 * (torch.arange(B) + 1)
    return torch.stack([(mixed[:, 0] == v).flatten(1).float().mean(dim=1) for v in values], dim=1)


def box_area(box: tuple[int, int, int, int]) -> int:
    x1, y1, x2, y2 = box
    return (x2 - x1) * (y2 - y1)


def roll_partner() -> torch.Tensor:
    """torchvision pairs image i with image i - 1 (``roll(1, 0)``)."""
    return (torch.arange(B) - 1) % B


# ---------------------------------------------------------------- MixUp


def test_mixup_fixed_params_blend_pixels_and_labels() -> None:
    images, labels = constant_batch(torch.float32)
    partner = torch.tensor([1, 0, 3, 2, 5, 4])
    mixed, soft = MixUp(alpha=0.2, num_classes=B).apply(images, labels, MixUpParams(lam=0.7, partner=partner))
    assert mixed.shape == images.shape and mixed.dtype == torch.float32
    assert mixed[0, 0, 0, 0].item() == pytest.approx(0.7 * 10 + 0.3 * 20)
    assert soft.shape == (B, B) and soft.dtype == torch.float32
    assert soft[0, 0].item() == pytest.approx(0.7) and soft[0, 1].item() == pytest.approx(0.3)
    assert torch.allclose(soft.sum(dim=1), torch.ones(B))


def test_mixup_matches_torchvision_for_the_same_lambda_and_pairs() -> None:
    images = torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    lam = 0.37
    ours_x, ours_y = MixUp(num_classes=3).apply(images, labels, MixUpParams(lam=lam, partner=roll_partner()))
    theirs = v2.MixUp(num_classes=3)
    params = {"lam": lam, "labels": labels, "batch_size": B}
    assert torch.allclose(ours_x, theirs.transform(images, params), atol=1e-6)
    assert torch.allclose(ours_y, theirs.transform(labels, params), atol=1e-6)


def test_mixup_samples_reproducibly_and_refuses_uint8() -> None:
    mixup = MixUp(alpha=0.4, num_classes=B)
    first = mixup.sample_params(B, torch.Generator().manual_seed(5))
    again = mixup.sample_params(B, torch.Generator().manual_seed(5))
    assert first.lam == again.lam and torch.equal(first.partner, again.partner)
    assert sorted(first.partner.tolist()) == list(range(B))
    images, labels = constant_batch(torch.uint8)
    with pytest.raises(TypeError, match=r"float\(\) / 255"):
        mixup(images, labels)


# ---------------------------------------------------------------- CutMix


class FixedLambda:
    """Stands in for torchvision's Beta distribution: always the same lambda."""

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def sample(self, shape: tuple[int, ...] = ()) -> torch.Tensor:
        return torch.tensor([self.lam])


def test_cutmix_box_matches_torchvision_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = v2.CutMix(num_classes=3)
    images = torch.zeros(2, 3, H, W)
    for lam in (0.05, 0.3, 0.8):
        # Fix torchvision's lambda; its box centre then comes from torch.randint, drawn again below.
        monkeypatch.setattr(theirs, "_dist", FixedLambda(lam))
        for seed in range(20):
            torch.manual_seed(seed)
            params = theirs.make_params([images])
            torch.manual_seed(seed)
            centre_x, centre_y = int(torch.randint(W, (1,))), int(torch.randint(H, (1,)))
            box = cutmix_box(lam, centre_x, centre_y, H, W)
            assert box == params["box"]
            x1, y1, x2, y2 = box
            assert 1 - (x2 - x1) * (y2 - y1) / (H * W) == pytest.approx(params["lam_adjusted"])


def test_cutmix_matches_torchvision_for_the_same_box_and_pairs() -> None:
    images = torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    box = (3, 2, 11, 9)
    lam = 1 - 8 * 7 / (H * W)
    ours_x, ours_y = CutMix(num_classes=3).apply(
        images, labels, CutMixParams(box=box, lam=lam, partner=roll_partner(), lam_drawn=lam)
    )
    theirs = v2.CutMix(num_classes=3)
    params = {"box": box, "lam_adjusted": lam, "labels": labels, "batch_size": B}
    assert torch.equal(ours_x, theirs.transform(images, params))
    assert torch.allclose(ours_y, theirs.transform(labels, params), atol=1e-6)


def test_cutmix_label_weights_equal_pixel_shares_even_when_clipped() -> None:
    images, labels = constant_batch(torch.uint8)
    cutmix = CutMix(alpha=1.0, num_classes=B)
    clipped = 0
    for seed in range(40):
        generator = torch.Generator().manual_seed(seed)
        params = cutmix.sample_params(B, H, W, generator)
        mixed, soft = cutmix.apply(images, labels, params)
        assert mixed.dtype == torch.uint8 and mixed.shape == images.shape
        assert torch.allclose(soft.sum(dim=1), torch.ones(B))
        assert torch.allclose(soft, pixel_shares(mixed), atol=1e-6)
        # The same box around the image centre is never clipped.
        clipped += box_area(params.box) < box_area(cutmix_box(params.lam_drawn, W // 2, H // 2, H, W))
    assert clipped > 0  # some boxes were cut off at the border, and the labels still match


def test_cutmix_is_reproducible_with_a_generator() -> None:
    images, labels = constant_batch()
    a = CutMix(num_classes=B)(images, labels, generator=torch.Generator().manual_seed(2))
    b = CutMix(num_classes=B)(images, labels, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------- Mosaic


def test_mosaic_label_weights_equal_quadrant_areas() -> None:
    images, labels = constant_batch(torch.uint8)
    mosaic = Mosaic(num_classes=B, output_size=(20, 24))
    for seed in range(10):
        params = mosaic.sample_params(B, 20, 24, torch.Generator().manual_seed(seed))
        mixed, soft = mosaic.apply(images, labels, params)
        assert mixed.shape == (B, 3, 20, 24) and mixed.dtype == torch.uint8
        assert torch.allclose(soft.sum(dim=1), torch.ones(B))
        assert torch.allclose(soft, pixel_shares(mixed), atol=1e-6)
        assert torch.equal(params.sources[0], torch.arange(B))


def test_mosaic_fixed_centre_puts_each_source_in_its_quadrant() -> None:
    images, labels = constant_batch(torch.float32)
    sources = torch.stack([torch.arange(B), (torch.arange(B) + 1) % B, (torch.arange(B) + 2) % B, (torch.arange(B) + 3) % B])
    mixed, soft = Mosaic(num_classes=B).apply(images, labels, MosaicParams(centre=(4, 3), sources=sources))
    assert mixed.shape == images.shape
    assert mixed[0, 0, 0, 0].item() == pytest.approx(10)  # top-left: image 0
    assert mixed[0, 0, 0, W - 1].item() == pytest.approx(20)  # top-right: image 1
    assert mixed[0, 0, H - 1, 0].item() == pytest.approx(30)  # bottom-left: image 2
    assert mixed[0, 0, H - 1, W - 1].item() == pytest.approx(40)  # bottom-right: image 3
    assert soft[0, :4].tolist() == pytest.approx([12 / 192, 36 / 192, 36 / 192, 108 / 192])


# ---------------------------------------------------------------- soft labels, loader, Trainer


def test_soft_labels_checks_the_class_range() -> None:
    assert soft_labels(torch.tensor([1, 0]), 3).tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="num_classes"):
        soft_labels(torch.tensor([0, 3]), 3)


def test_mixing_loader_mixes_every_batch_and_keeps_len() -> None:
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(20) % 2
    base = DeviceLoader(images, labels, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    loader = MixingLoader(base, [MixUp(0.4, num_classes=2), CutMix(1.0, num_classes=2)],
                          generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(loader) == len(base) == len(batches) == 3
    for x, y in batches:
        assert x.dtype == torch.float32 and y.shape == (x.shape[0], 2)
        assert torch.allclose(y.sum(dim=1), torch.ones(x.shape[0]))
    with pytest.raises(ValueError, match="at least one mixer"):
        MixingLoader(base, [])


class RecordingLoss(nn.CrossEntropyLoss):
    """Cross-entropy that remembers the shapes of the targets it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.target_shapes: list[tuple[int, ...]] = []

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.target_shapes.append(tuple(target.shape))
        return super().forward(logits, target)


def test_trainer_fits_on_soft_labels() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(32) % 2
    train = MixingLoader(DeviceLoader(images, labels, batch_size=8, shuffle=True), MixUp(0.4, num_classes=2))
    val = DeviceLoader(images, labels, batch_size=16, shuffle=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    loss = RecordingLoss()
    history = Trainer(model, loss_fn=loss, device="cpu", progress=False, verbose=False).fit(train, val, epochs=2)
    assert len(history["train_loss"]) == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in history["train_loss"] + history["val_loss"])
    assert (8, 2) in loss.target_shapes and (16,) in loss.target_shapes  # soft in training, hard in validation


def test_show_mixed_batch_titles_read_class_weights() -> None:
    images, labels = constant_batch(torch.uint8)
    soft = torch.zeros(B, 3)
    soft[:, 0], soft[:, 1] = 0.63, 0.37
    fig = show_mixed_batch(images, soft, ["cats", "dogs", "birds"], max_images=4)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["cats 0.63 / dogs 0.37"] * 4
    with pytest.raises(ValueError, match="one weight per class"):
        show_mixed_batch(images, soft, ["cats", "dogs"])
