"""materialise (offline copies, in memory or as PNG files) and EachImage (on the fly)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ldl.augment import EachImage, GridMask, folder_bytes, materialise
from ldl.data.index import index_image_folder
from ldl.data.loader import DeviceLoader

TRANSFORM = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomRotation(20), GridMask(unit_range=(0.3, 0.6))])


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return images, torch.tensor([0, 1, 0, 1, 1, 0])


def test_materialise_enlarges_the_set_reproducibly(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = data
    big_x, big_y = materialise(images, labels, TRANSFORM, 3, seed=0)
    assert big_x.shape == (24, 3, 16, 16) and big_x.dtype == torch.uint8
    assert torch.equal(big_x[:6], images)  # the originals come first
    assert torch.equal(big_y, labels.repeat(4))
    assert not torch.equal(big_x[6:12], images)  # copy 1 is augmented
    assert torch.equal(big_x, materialise(images, labels, TRANSFORM, 3, seed=0)[0])
    assert not torch.equal(big_x, materialise(images, labels, TRANSFORM, 3, seed=1)[0])
    state = torch.get_rng_state()
    materialise(images, labels, TRANSFORM, 1, seed=0)
    assert torch.equal(torch.get_rng_state(), state)


def test_materialise_writes_an_image_folder(tmp_path: Path, data: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = data
    target = tmp_path / "augmented"
    big_x, _ = materialise(images, labels, TRANSFORM, 2, seed=0, to=target, classes=["cats", "dogs"])
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*.png"))
    assert len(files) == 18 and "cats/0_0.png" in files and "dogs/1_2.png" in files
    with Image.open(target / "dogs" / "1_2.png") as png:
        assert torch.equal(TF.pil_to_tensor(png), big_x[2 * 6 + 1])  # PNG is lossless
    assert index_image_folder(target).counts() == {"cats": 9, "dogs": 9}
    assert folder_bytes(target) > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_materialise_refuses_an_existing_folder_and_bad_transforms(
    tmp_path: Path, data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = data
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        materialise(images, labels, TRANSFORM, 1, seed=0, to=existing)
    assert (existing / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="ToDtype"):
        materialise(images, labels, v2.ToDtype(torch.float32, scale=True), 1, seed=0, to=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="uint8"):
        materialise(images.float(), labels, TRANSFORM, 1, seed=0)


def test_each_image_augments_every_batch_differently(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = data
    loader = DeviceLoader(images, labels, batch_size=6, shuffle=False, mean=None, std=None,
                          augment=EachImage(v2.RandomRotation(30)))
    torch.manual_seed(0)
    first, second = next(iter(loader))[0], next(iter(loader))[0]
    assert first.shape == (6, 3, 16, 16) and first.dtype == torch.float32
    assert not torch.equal(first, second)  # on the fly: a new variant every epoch
