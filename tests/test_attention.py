"""Attention maps of torchvision's VisionTransformer, checked against nn.MultiheadAttention's own weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer

from ldl.nn.attention import attention_rollout, last_layer_cls_attention, upsample_map


def small_vit(image_size: int = 32, patch_size: int = 8, num_layers: int = 2) -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers, num_heads=4,
                             hidden_dim=32, mlp_dim=64, num_classes=2)


def reference_attention(vit: VisionTransformer, images: torch.Tensor) -> list[torch.Tensor]:
    """Each block's head-averaged attention (B, T, T), as nn.MultiheadAttention itself reports it
    when asked for weights, on the ``ln_1`` output its block feeds it."""
    normalised: list[torch.Tensor] = []
    handles = [block.ln_1.register_forward_hook(lambda module, args, out: normalised.append(out))
               for block in vit.encoder.layers]
    try:
        with torch.no_grad():
            vit.eval()(images)
    finally:
        for handle in handles:
            handle.remove()
    weights = []
    for block, x in zip(vit.encoder.layers, normalised):
        with torch.no_grad():
            _, w = block.self_attention(x, x, x, need_weights=True, average_attn_weights=True)
        weights.append(w)
    return weights


def cls_row(attention: torch.Tensor, side: int) -> torch.Tensor:
    """(B, T, T) -> the class token's row over the patches, summing to 1, as (B, side, side)."""
    row = attention[:, 0, 1:]
    return (row / row.sum(dim=-1, keepdim=True)).reshape(-1, side, side)


@pytest.mark.parametrize(("image_size", "patch_size"), [(32, 8), (48, 16), (40, 8)])
def test_last_layer_attention_equals_multihead_attentions_own_weights(image_size: int, patch_size: int) -> None:
    vit = small_vit(image_size, patch_size)
    images = torch.randn(3, 3, image_size, image_size)
    side = image_size // patch_size
    maps = last_layer_cls_attention(vit, images)
    assert maps.shape == (3, side, side)
    expected = cls_row(reference_attention(vit, images)[-1], side)
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(maps[0], maps[1])  # each image gets its own map


def test_maps_sum_to_one_over_the_patches() -> None:
    vit = small_vit()
    images = torch.randn(2, 3, 32, 32)
    for maps in (last_layer_cls_attention(vit, images), attention_rollout(vit, images),
                 attention_rollout(vit, images, discard_ratio=0.8)):
        assert (maps >= 0).all()
        torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.ones(2))


def test_rollout_multiplies_residual_mixed_attention_over_the_layers() -> None:
    vit = small_vit(num_layers=3)
    images = torch.randn(2, 3, 32, 32)
    identity = torch.eye(17)
    product = identity
    for attention in reference_attention(vit, images):
        mixed = 0.5 * attention + 0.5 * identity  # rows still sum to 1
        product = mixed @ product
    torch.testing.assert_close(attention_rollout(vit, images), cls_row(product, 4), atol=1e-5, rtol=1e-4)


def test_rollout_of_a_single_layer_is_that_layers_class_token_attention() -> None:
    # The identity only adds to the class token's attention to itself, which the maps leave out.
    vit = small_vit(num_layers=1)
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(attention_rollout(vit, images), last_layer_cls_attention(vit, images))


def test_discarding_weak_links_changes_the_rollout() -> None:
    vit = small_vit(num_layers=3)
    images = torch.randn(1, 3, 32, 32)
    assert not torch.allclose(attention_rollout(vit, images, discard_ratio=0.9), attention_rollout(vit, images))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        attention_rollout(vit, images, discard_ratio=1.0)


def test_model_state_is_restored_even_when_the_forward_pass_fails() -> None:
    vit = small_vit().train()
    vit.encoder.layers[0].eval()  # a mixed state must come back as it was
    modes = {name: module.training for name, module in vit.named_modules()}
    images = torch.randn(1, 3, 32, 32)

    last_layer_cls_attention(vit, images)
    attention_rollout(vit, images)
    assert {name: module.training for name, module in vit.named_modules()} == modes

    def fail(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        raise RuntimeError("broken head")

    failing = vit.heads.register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="broken head"):
        attention_rollout(vit, images)
    failing.remove()
    assert all(not block.self_attention._forward_pre_hooks for block in vit.encoder.layers)
    assert {name: module.training for name, module in vit.named_modules()} == modes


def test_wrong_inputs_are_refused_with_what_to_do() -> None:
    vit = small_vit()
    with pytest.raises(ValueError, match="Resize to 32x32"):
        last_layer_cls_attention(vit, torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="Normalize"):
        attention_rollout(vit, torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match="VisionTransformer"):
        last_layer_cls_attention(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 32, 32))


def test_upsample_map_gives_image_sized_maps_in_zero_one() -> None:
    maps = torch.rand(2, 4, 4)
    maps[1, 3, 0] = 5.0  # one strong patch: bottom left
    big = upsample_map(maps, 32)
    assert big.shape == (2, 32, 32)
    for one in big:
        assert float(one.min()) == pytest.approx(0.0) and float(one.max()) == pytest.approx(1.0)
    assert float(big[1, 24:, :8].max()) == pytest.approx(1.0)  # the strong patch stays where it was
    assert big[1, :16, 16:].max() < 0.5
    assert upsample_map(torch.ones(1, 2, 2), (6, 10)).shape == (1, 6, 10)
    assert torch.equal(upsample_map(torch.ones(1, 2, 2), 4), torch.zeros(1, 4, 4))  # constant: no contrast
    with pytest.raises(ValueError, match="unsqueeze"):
        upsample_map(torch.rand(4, 4), 32)
