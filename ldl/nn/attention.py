"""Where a torchvision ``VisionTransformer`` looks: attention maps over its patches.

- :func:`last_layer_cls_attention`: the class token's attention in the last encoder layer.
- :func:`attention_rollout`: attention traced through every layer (Abnar & Zuidema, 2020,
  "Quantifying Attention Flow in Transformers").
- :func:`upsample_map`: patch-grid maps to image size, in [0, 1], ready to overlay.

torchvision's encoder blocks call ``nn.MultiheadAttention`` with ``need_weights=False`` (the
fast path never builds the weight matrix), so the weights are recomputed here: a forward
pre-hook captures what each block's ``self_attention`` reads (its ``ln_1`` output), and
``softmax(q k^T / sqrt(d))`` is computed per head from the layer's own ``in_proj_weight``.

Maps are (B, rows, cols) float32 on the CPU, rows = cols = image_size / patch_size, each
summing to 1 over the patches: the class token's attention to itself is left out and the
rest rescaled, so a map says how the attention paid to the image is shared among its patches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VisionTransformer


def _check_inputs(vit: nn.Module, images: torch.Tensor) -> None:
    """Clear errors before any forward pass: the model type and the image batch's shape."""
    if not isinstance(vit, VisionTransformer):
        raise TypeError(f"Expected a torchvision VisionTransformer (e.g. ldl.models.create_backbone('vit_b_16')); "
                        f"got {type(vit).__name__}.")
    size = vit.image_size
    if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
        raise ValueError(f"This ViT reads (B, 3, {size}, {size}) normalised float images; got shape "
                         f"{tuple(images.shape)}. Resize to {size}x{size} (v2.Resize + v2.CenterCrop).")
    if not images.is_floating_point():
        raise ValueError("images are uint8: convert and normalise them as for training "
                         "(v2.ToDtype(torch.float32, scale=True), then v2.Normalize).")


@contextmanager
def _inputs_of_self_attention(vit: VisionTransformer, blocks: list[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Capture what each block's ``self_attention`` reads during a forward pass, in eval mode.

    Yields a list that fills with one (B, T, D) tensor per block, in order. On leaving,
    however it is left, the hooks are removed and every module's train/eval mode restored.
    """
    captured: list[torch.Tensor] = []

    def keep_query(module: nn.Module, args: tuple, kwargs: dict) -> None:
        query = args[0] if args else kwargs["query"]
        captured.append(query.detach())

    modes = {module: module.training for module in vit.modules()}
    handles = [block.self_attention.register_forward_pre_hook(keep_query, with_kwargs=True) for block in blocks]
    try:
        vit.eval()  # dropout off: the maps describe the network as it predicts
        yield captured
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training  # per module: a model may mix modes (e.g. frozen parts in eval)


def _attention_weights(attention: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """The weights ``attention`` computes for self-attention on ``x``: (B, T, D) -> (B, heads, T, T).

    ``in_proj_weight`` stacks the query, key and value projections as (3D, D); only queries
    and keys are needed for the weights.
    """
    if not attention.batch_first:
        x = x.transpose(0, 1)  # (T, B, D) -> (B, T, D)
    dim, heads = attention.embed_dim, attention.num_heads
    if attention.in_proj_weight is not None:
        w_q, w_k, _ = attention.in_proj_weight.chunk(3)  # each (D, D)
    else:  # layers built with separate key/value sizes keep separate matrices
        w_q, w_k = attention.q_proj_weight, attention.k_proj_weight
    b_q, b_k = (None, None) if attention.in_proj_bias is None else attention.in_proj_bias.chunk(3)[:2]
    batch, tokens, _ = x.shape
    head_dim = dim // heads
    q = F.linear(x, w_q, b_q).reshape(batch, tokens, heads, head_dim).transpose(1, 2)  # (B, heads, T, d)
    k = F.linear(x, w_k, b_k).reshape(batch, tokens, heads, head_dim).transpose(1, 2)  # (B, heads, T, d)
    return (q @ k.transpose(-2, -1) / math.sqrt(head_dim)).softmax(dim=-1)  # (B, heads, T, T)


def _layer_attention(vit: VisionTransformer, images: torch.Tensor, last_only: bool) -> list[torch.Tensor]:
    """Head-averaged attention of the last block (``last_only``) or of every block, first first.

    Returns a list of (B, T, T) tensors; runs the model without gradients.
    """
    _check_inputs(vit, images)
    blocks = list(vit.encoder.layers)
    if last_only:
        blocks = blocks[-1:]
    device = next(vit.parameters()).device
    with torch.no_grad(), _inputs_of_self_attention(vit, blocks) as inputs:
        vit(images.to(device))
        return [_attention_weights(block.self_attention, x).mean(dim=1) for block, x in zip(blocks, inputs)]


def _class_token_map(attention: torch.Tensor, vit: VisionTransformer) -> torch.Tensor:
    """Row 0 of (B, T, T) attention, patches only, summing to 1, on the patch grid: (B, rows, cols)."""
    to_patches = attention[:, 0, 1:]  # (B, N): what the class token reads from each patch
    to_patches = to_patches / to_patches.sum(dim=-1, keepdim=True).clamp_min(1e-12)  # share of what the image gets
    side = vit.image_size // vit.patch_size
    return to_patches.reshape(-1, side, side).float().cpu()  # row-major, as the patches were cut


def last_layer_cls_attention(vit: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """The class token's attention over the patches in the last encoder layer, averaged over heads.

    Args:
        vit: a torchvision ``VisionTransformer``; its train/eval mode is kept.
        images: (B, 3, S, S) normalised float, S = ``vit.image_size``.

    Returns:
        (B, S/P, S/P) float32 on the CPU, each map summing to 1 over the patches.

    The last layer's class token is what the head classifies, so this map shows which
    patches fed the prediction most directly. It ignores how earlier layers had already
    mixed the patches; :func:`attention_rollout` takes that into account.
    """
    (attention,) = _layer_attention(vit, images, last_only=True)  # (B, T, T)
    return _class_token_map(attention, vit)


def attention_rollout(vit: VisionTransformer, images: torch.Tensor, discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention traced from the class token back to the input patches through every layer.

    For each layer, the head-averaged attention A (B, T, T) becomes ``0.5 * A + 0.5 * I``
    (the residual connection: half of each token goes through unchanged), rows re-normalised
    to sum to 1; the layers' matrices are multiplied, last on the left, and the class token's
    row of the product is read over the patches (Abnar & Zuidema, 2020).

    Args:
        vit: a torchvision ``VisionTransformer``; its train/eval mode is kept.
        images: (B, 3, S, S) normalised float, S = ``vit.image_size``.
        discard_ratio: in [0, 1). In each layer, this share of the smallest attention
            weights of each image is set to 0 before the identity is added (the class
            token's attention to itself is kept): weak, noisy links stop spreading, which
            often sharpens the map.

    Returns:
        (B, S/P, S/P) float32 on the CPU, each map summing to 1 over the patches.
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1) (0 keeps every weight); got {discard_ratio}.")
    layers = _layer_attention(vit, images, last_only=False)  # L tensors (B, T, T)
    batch, tokens, _ = layers[0].shape
    identity = torch.eye(tokens, device=layers[0].device)  # (T, T)
    rollout = identity.expand(batch, tokens, tokens)  # (B, T, T)
    for attention in layers:
        if discard_ratio > 0:
            attention = _discard_smallest(attention, discard_ratio)
        attention = 0.5 * attention + 0.5 * identity
        attention = attention / attention.sum(dim=-1, keepdim=True)  # rows sum to 1 again
        rollout = attention @ rollout  # this layer applied after all the earlier ones
    return _class_token_map(rollout, vit)


def _discard_smallest(attention: torch.Tensor, ratio: float) -> torch.Tensor:
    """(B, T, T) with the smallest ``ratio`` share of each image's weights set to 0, [0, 0] kept."""
    flat = attention.flatten(1).clone()  # (B, T*T)
    count = int(flat.shape[1] * ratio)
    smallest = flat.topk(count, dim=1, largest=False).indices  # (B, count)
    kept = flat[:, 0].clone()  # the class token's attention to itself
    flat.scatter_(1, smallest, 0.0)
    flat[:, 0] = kept
    return flat.reshape(attention.shape)


def upsample_map(maps: torch.Tensor, image_size: int | tuple[int, int]) -> torch.Tensor:
    """Patch-grid maps to image size, for overlays: (B, rows, cols) -> (B, H, W).

    Bilinear interpolation smooths the patch blocks; then each map is rescaled on its own
    to [0, 1] (its smallest value to 0, its largest to 1), so a colour map uses its whole
    range. After that the values no longer sum to 1: they say where, not how much. A
    constant map becomes all zeros.

    Args:
        maps: (B, rows, cols) float, e.g. from :func:`attention_rollout`.
        image_size: ``S`` for S x S, or ``(H, W)``.
    """
    if maps.ndim != 3:
        raise ValueError(f"maps must be (B, rows, cols); got shape {tuple(maps.shape)}. "
                         "For one map use maps.unsqueeze(0).")
    size = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    big = F.interpolate(maps.float().unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
    low = big.amin(dim=(1, 2), keepdim=True)
    high = big.amax(dim=(1, 2), keepdim=True)
    return (big - low) / (high - low).clamp_min(1e-12)  # (B, H, W) in [0, 1]
