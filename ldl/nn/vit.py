"""The Vision Transformer's front end, written by hand: image -> patches -> tokens.

A ViT reads an image the way a language model reads a sentence: as a sequence of tokens.

1. :func:`patchify` cuts the image into ``P x P`` patches and flattens each one.
2. :class:`PatchEmbedding` maps every flattened patch to a ``D``-dimensional token (one Linear).
3. :class:`ViTFrontEnd` puts a learned class token in front and adds learned position
   embeddings: the result is what the transformer's encoder layers read.
4. :class:`SingleHeadAttention` is one head of self-attention, the operation those layers repeat.

:func:`copy_torchvision_front_end` loads the weights of torchvision's ``VisionTransformer``
into :class:`ViTFrontEnd`, so a test can prove the hand-written version computes the same thing.

Shapes: B images, C channels, H x W pixels, P patch side, N = (H/P)(W/P) patches,
D embedding size, T tokens (N + 1 with the class token).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models import VisionTransformer


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """``224`` -> ``(224, 224)``; ``(H, W)`` unchanged."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches, each flattened to a vector.

    (B, C, H, W) -> (B, N, C*P*P) with N = (H/P) * (W/P). Patches come in row-major order
    (left to right, then top to bottom), as one reads a page: patch ``i`` is the crop
    ``images[:, :, r*P:(r+1)*P, c*P:(c+1)*P]`` with ``r, c = divmod(i, W // P)``. Each vector
    holds channel 0's P*P pixels row by row, then channel 1's, ... (the layout of a Conv2d
    weight ``(D, C, P, P)`` flattened, which is why the two views agree).
    """
    if images.ndim != 4:
        raise ValueError(f"patchify needs a batch (B, C, H, W); got shape {tuple(images.shape)}. "
                         "For one image use images.unsqueeze(0).")
    b, c, h, w = images.shape
    p = patch_size
    if p < 1 or h % p or w % p:
        raise ValueError(f"Image size {h}x{w} is not a multiple of the patch size {p}: resize or crop the "
                         f"images to a multiple of {p} (e.g. {h // p * p}x{w // p * p}) first.")
    x = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, rows, P, cols, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, P, P): patch position first, its pixels after
    return x.reshape(b, (h // p) * (w // p), c * p * p)  # (B, N, C*P*P)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size: int | tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`patchify`: (B, N, C*P*P) -> (B, C, H, W).

    ``image_size`` is ``H`` for square images or ``(H, W)``.
    """
    h, w = _pair(image_size)
    p = patch_size
    if patches.ndim != 3:
        raise ValueError(f"unpatchify needs (B, N, C*P*P) patches; got shape {tuple(patches.shape)}.")
    b, n, length = patches.shape
    if p < 1 or h % p or w % p:
        raise ValueError(f"image_size {h}x{w} is not a multiple of the patch size {p}.")
    if n != (h // p) * (w // p) or length % (p * p):
        raise ValueError(f"{n} patches of length {length} do not make a {h}x{w} image with {p}x{p} patches: "
                         f"expected {(h // p) * (w // p)} patches of length C*{p * p}.")
    c = length // (p * p)
    x = patches.reshape(b, h // p, w // p, c, p, p)  # (B, rows, cols, C, P, P)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (B, C, rows, P, cols, P)
    return x.reshape(b, c, h, w)


class PatchEmbedding(nn.Module):
    """Each flattened patch through one shared Linear: (B, C, H, W) -> (B, N, D).

    The same map can be written as ``nn.Conv2d(C, D, kernel_size=P, stride=P)``: a kernel
    as large as its stride sees each patch exactly once, and at every position it takes a
    dot product of the patch's C*P*P pixels with each of D filters, which is what the Linear
    does. torchvision writes it that way (``VisionTransformer.conv_proj``); its weight
    ``(D, C, P, P)`` reshaped to ``(D, C*P*P)`` is this Linear's weight.
    """

    def __init__(self, patch_size: int = 16, dim: int = 768, in_channels: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.proj = nn.Linear(in_channels * patch_size * patch_size, dim)  # C*P*P -> D

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"PatchEmbedding expects (B, {self.in_channels}, H, W) images; "
                             f"got shape {tuple(images.shape)}.")
        return self.proj(patchify(images, self.patch_size))  # (B, N, C*P*P) -> (B, N, D)


class ViTFrontEnd(nn.Module):
    """Patch embedding, a class token in front, position embeddings added: (B, 3, H, W) -> (B, N+1, D).

    Why positions: self-attention compares every token with every other token, and nothing
    in it depends on where a token sits in the sequence. Shuffle the patches and the
    attention outputs are shuffled the same way but otherwise identical (it is
    *permutation-equivariant*), so without help the network could not tell a face from the
    same patches scrambled. A learned vector per position, added to the token, tells it where
    each patch came from.

    Why a class token: a learned token with no patch of its own. Through attention it gathers
    information from all the patches; the classifier head reads its final state only.
    """

    def __init__(self, image_size: int = 224, patch_size: int = 16, dim: int = 768, in_channels: int = 3) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}.")
        self.image_size = image_size
        self.num_patches = (image_size // patch_size) ** 2
        self.patch_embedding = PatchEmbedding(patch_size, dim, in_channels)
        # The same initial values as torchvision: a zero class token, small random positions.
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))  # (1, 1, D)
        self.pos_embedding = nn.Parameter(torch.randn(1, self.num_patches + 1, dim) * 0.02)  # (1, N+1, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        if (h, w) != (self.image_size, self.image_size):
            # One position embedding per patch was learned: another size means another N.
            raise ValueError(f"ViTFrontEnd was built for {self.image_size}x{self.image_size} images; got {h}x{w}. "
                             f"Resize the images to {self.image_size} (e.g. v2.Resize({self.image_size})).")
        tokens = self.patch_embedding(images)  # (B, N, D)
        class_token = self.class_token.expand(len(tokens), -1, -1)  # (B, 1, D): one copy per image
        tokens = torch.cat([class_token, tokens], dim=1)  # (B, N+1, D)
        return tokens + self.pos_embedding  # (B, N+1, D) + (1, N+1, D) broadcasts over the batch


class SingleHeadAttention(nn.Module):
    """One head of scaled dot-product self-attention: (B, T, D) -> (B, T, D) and weights (B, T, T).

    Every token asks a question (query q), offers a label (key k) and a content (value v).
    Token i's output is the average of all values, weighted by how well its query matches
    each key: ``weights = softmax(q k^T / sqrt(D))``, each row summing to 1. Dividing by
    sqrt(D) keeps the dot products near unit size, so the softmax does not saturate.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.query(x), self.key(x), self.value(x)  # each (B, T, D)
        scores = q @ k.transpose(1, 2) / math.sqrt(x.shape[-1])  # (B, T, T): query i against key j
        weights = scores.softmax(dim=-1)  # (B, T, T), each row sums to 1
        return weights @ v, weights  # (B, T, D), (B, T, T)


@torch.no_grad()
def copy_torchvision_front_end(front_end: ViTFrontEnd, vit: VisionTransformer) -> ViTFrontEnd:
    """Copy a torchvision ``VisionTransformer``'s patch embedding, class token and position
    embeddings into ``front_end``, in place; returns ``front_end``.

    Afterwards ``front_end(x)`` equals what torchvision feeds its first encoder layer (in
    eval mode, where its dropout does nothing): ``vit._process_input(x)`` with the class
    token in front and ``vit.encoder.pos_embedding`` added.
    """
    if not isinstance(vit, VisionTransformer):
        raise TypeError(f"Expected a torchvision VisionTransformer (e.g. torchvision.models.vit_b_16()); "
                        f"got {type(vit).__name__}.")
    conv = vit.conv_proj
    if not isinstance(conv, nn.Conv2d):
        raise ValueError("This VisionTransformer has a convolutional stem (conv_stem_configs), not a single "
                         "patch projection: ViTFrontEnd cannot copy it.")
    linear = front_end.patch_embedding.proj
    wanted = (linear.out_features, front_end.patch_embedding.in_channels, front_end.patch_embedding.patch_size)
    found = (conv.out_channels, conv.in_channels, conv.kernel_size[0])
    if wanted != found or front_end.pos_embedding.shape != vit.encoder.pos_embedding.shape:
        raise ValueError(
            f"Sizes differ: ViTFrontEnd(dim, in_channels, patch_size) = {wanted} with position embeddings "
            f"{tuple(front_end.pos_embedding.shape)}, the VisionTransformer has {found} and "
            f"{tuple(vit.encoder.pos_embedding.shape)}. Build ViTFrontEnd(image_size={vit.image_size}, "
            f"patch_size={vit.patch_size}, dim={vit.hidden_dim})."
        )
    linear.weight.copy_(conv.weight.reshape(conv.out_channels, -1))  # (D, C, P, P) -> (D, C*P*P)
    if conv.bias is not None:
        linear.bias.copy_(conv.bias)
    else:
        linear.bias.zero_()
    front_end.class_token.copy_(vit.class_token)  # (1, 1, D)
    front_end.pos_embedding.copy_(vit.encoder.pos_embedding)  # (1, N+1, D)
    return front_end
