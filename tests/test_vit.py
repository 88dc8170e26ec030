"""The hand-written ViT front end: patches, tokens, positions, one attention head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VisionTransformer, vit_b_16

from ldl.nn.vit import (
    PatchEmbedding,
    SingleHeadAttention,
    ViTFrontEnd,
    copy_torchvision_front_end,
    patchify,
    unpatchify,
)


@pytest.fixture(scope="module")
def vit_b16() -> VisionTransformer:
    """A random-init ViT-B/16 whose class token and positions are random too (torchvision starts
    the class token at zero), so that copying them is really tested."""
    torch.manual_seed(0)
    model = vit_b_16(weights=None).eval()
    with torch.no_grad():
        model.class_token.normal_()
        model.encoder.pos_embedding.normal_()
        model.conv_proj.bias.normal_()
    return model


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the wanted tensor is captured."""

    def __init__(self, tensor: torch.Tensor) -> None:
        super().__init__("captured")
        self.tensor = tensor


def encoder_layers_input(vit: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """What torchvision's own forward feeds ``encoder.layers`` (the 12 layers are not run)."""

    def stop(module: nn.Module, args: tuple) -> None:
        raise _Stop(args[0])

    handle = vit.encoder.layers.register_forward_pre_hook(stop)
    try:
        with torch.no_grad():
            vit(images)
    except _Stop as captured:
        return captured.tensor
    finally:
        handle.remove()
    raise AssertionError("the forward pass never reached encoder.layers")


def test_shapes_match_torchvision_vit_b_16_at_224(vit_b16: VisionTransformer) -> None:
    images = torch.randn(2, 3, 224, 224)
    assert patchify(images, 16).shape == (2, 196, 3 * 16 * 16)
    assert PatchEmbedding(16, 768)(images).shape == (2, 196, 768) == vit_b16._process_input(images).shape
    front_end = ViTFrontEnd(224, 16, 768)
    assert front_end.num_patches == 196
    assert front_end(images).shape == (2, 197, 768) == encoder_layers_input(vit_b16, images).shape


def test_front_end_equals_torchvision_after_copying_its_weights(vit_b16: VisionTransformer) -> None:
    images = torch.randn(2, 3, 224, 224)
    front_end = copy_torchvision_front_end(ViTFrontEnd(224, 16, 768), vit_b16)
    with torch.no_grad():
        ours = front_end(images)
        reference = torch.cat([vit_b16.class_token.expand(2, -1, -1), vit_b16._process_input(images)], dim=1)
        reference = reference + vit_b16.encoder.pos_embedding
    assert reference.abs().mean() > 0.5  # random class token and positions: not trivially zero
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, encoder_layers_input(vit_b16, images), atol=1e-5, rtol=1e-5)


def test_copy_refuses_a_front_end_of_another_size(vit_b16: VisionTransformer) -> None:
    with pytest.raises(ValueError, match="patch_size=16, dim=768"):
        copy_torchvision_front_end(ViTFrontEnd(224, 32, 768), vit_b16)
    with pytest.raises(TypeError, match="VisionTransformer"):
        copy_torchvision_front_end(ViTFrontEnd(32, 8, 16), nn.Linear(2, 2))


def test_patch_embedding_is_the_strided_convolution() -> None:
    torch.manual_seed(0)
    embedding = PatchEmbedding(patch_size=4, dim=10)
    conv = nn.Conv2d(3, 10, kernel_size=4, stride=4)
    with torch.no_grad():
        conv.weight.copy_(embedding.proj.weight.reshape(10, 3, 4, 4))
        conv.bias.copy_(embedding.proj.bias)
    images = torch.randn(2, 3, 12, 8)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, D, 3, 2) -> (B, 6, D)
    torch.testing.assert_close(embedding(images), expected)


def test_patchify_matches_unfold_and_unpatchify_inverts_it() -> None:
    images = torch.randn(2, 3, 12, 20)
    patches = patchify(images, 4)
    assert patches.shape == (2, 15, 48)
    torch.testing.assert_close(patches, F.unfold(images, kernel_size=4, stride=4).transpose(1, 2))
    assert torch.equal(unpatchify(patches, 4, (12, 20)), images)
    square = torch.randn(1, 1, 8, 8)
    assert torch.equal(unpatchify(patchify(square, 2), 2, 8), square)


def test_patch_i_is_the_crop_at_row_i_div_cols_column_i_mod_cols() -> None:
    images = torch.arange(2 * 3 * 6 * 9, dtype=torch.float32).reshape(2, 3, 6, 9)
    patches = patchify(images, 3)  # 2 rows x 3 columns of patches
    for i in range(6):
        row, col = divmod(i, 3)
        crop = images[:, :, 3 * row:3 * row + 3, 3 * col:3 * col + 3]  # (B, C, P, P)
        assert torch.equal(patches[:, i], crop.reshape(2, -1))


def test_sizes_that_do_not_divide_into_patches_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="not a multiple of the patch size 16"):
        patchify(torch.zeros(1, 3, 224, 230), 16)
    with pytest.raises(ValueError, match="unsqueeze"):
        patchify(torch.zeros(3, 32, 32), 16)
    with pytest.raises(ValueError, match="do not make"):
        unpatchify(torch.zeros(1, 5, 48), 4, 8)
    with pytest.raises(ValueError, match="Resize the images to 32"):
        ViTFrontEnd(32, 8, 16)(torch.zeros(1, 3, 64, 64))


def test_attention_rows_sum_to_one() -> None:
    torch.manual_seed(0)
    out, weights = SingleHeadAttention(8)(torch.randn(2, 5, 8))
    assert out.shape == (2, 5, 8) and weights.shape == (2, 5, 5)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 5))


def test_attention_is_permutation_equivariant_until_positions_are_added() -> None:
    torch.manual_seed(0)
    images = torch.randn(1, 3, 16, 16)
    order = torch.randperm(16)
    shuffled = unpatchify(patchify(images, 4)[:, order], 4, 16)  # the same 16 patches, scrambled
    attention = SingleHeadAttention(12)

    embedding = PatchEmbedding(patch_size=4, dim=12)
    out, weights = attention(embedding(images))
    out_shuffled, weights_shuffled = attention(embedding(shuffled))
    torch.testing.assert_close(out_shuffled, out[:, order])  # same outputs, shuffled the same way
    torch.testing.assert_close(weights_shuffled, weights[:, order][:, :, order])

    front_end = ViTFrontEnd(16, 4, 12)
    with torch.no_grad():
        front_end.pos_embedding.normal_()
    out, _ = attention(front_end(images))
    out_shuffled, _ = attention(front_end(shuffled))
    tokens = torch.cat([torch.zeros(1), order + 1]).long()  # the class token stays first
    assert not torch.allclose(out_shuffled, out[:, tokens], atol=1e-3)  # positions tell them apart
