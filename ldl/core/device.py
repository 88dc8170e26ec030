"""Where to compute, and in which precision and memory order: the one rule of the course.

The Trainer, the LR finder and the throughput benchmark all ask these three functions,
so a benchmark measures what training does and the LR range test trains as the fit will:

>>> device = resolve_device("auto")                      # cuda if there is a GPU, else cpu
>>> amp_dtype = resolve_amp_dtype("auto", device)        # bfloat16/float16 on CUDA, None on the CPU
>>> resolve_channels_last("auto", model, device, amp_dtype)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["resolve_amp_dtype", "resolve_channels_last", "resolve_device"]

MIXED_PRECISION_CHOICES = ("auto", True, False, "bf16", "fp16")
# Ampere GPUs and newer (compute capability 8.0+) do bfloat16 in hardware; a T4 (7.5) does not.
BF16_MIN_CAPABILITY = 8


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` gives CUDA when a GPU is available, else the CPU; anything else is used as given.

    A notebook written with ``"auto"`` then runs unchanged on a laptop and on Colab.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_amp_dtype(mixed_precision: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full float32.

    ``"auto"``: on CUDA, bfloat16 where the GPU supports it (Ampere and newer), else float16;
    off on the CPU. ``True`` is ``"auto"`` but insists on a GPU; ``"bf16"``/``"fp16"``
    choose (CUDA only); ``False`` turns it off.

    Why off on the CPU: a CPU has no tensor cores, and most have no fast 16-bit matrix
    units either, so autocast only adds casts. Measured on the course's 2-core CPU,
    MobileNetV3-Large training steps ran at 0.70x and 0.72x the float32 speed under
    bfloat16 autocast (``benchmarks/RESULTS.md``), and bfloat16's 8-bit mantissa would
    cost accuracy for nothing. On a GPU 16-bit products run on tensor cores, several
    times faster, and halve the activations' memory.
    """
    if mixed_precision not in MIXED_PRECISION_CHOICES:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION_CHOICES}; got {mixed_precision!r}.")
    if mixed_precision is False or (mixed_precision == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise ValueError(
            f"mixed_precision={mixed_precision!r} needs a CUDA device, but the device is {device}. "
            "Use mixed_precision='auto' (off on the CPU) or False."
        )
    if mixed_precision == "fp16":
        return torch.float16
    if mixed_precision == "bf16" or torch.cuda.get_device_capability(device)[0] >= BF16_MIN_CAPABILITY:
        return torch.bfloat16
    # float16 has fewer exponent bits than bfloat16: the Trainer pairs it with a GradScaler.
    return torch.float16


def resolve_channels_last(
    channels_last: bool | str, model: nn.Module, device: torch.device, amp_dtype: torch.dtype | None
) -> bool:
    """Whether to train in channels-last memory order (NHWC) rather than PyTorch's NCHW.

    Convolution kernels read the channels of one pixel together; stored next to each other
    they load faster. ``"auto"`` turns it on for models with 2-D convolutions on the CPU
    (on 2 CPU cores the recap CNN trains 1.6-1.7x faster, MobileNetV3-Large 1.0-1.4x:
    benchmarks/RESULTS.md) and on a GPU under mixed precision (what tensor cores want);
    a GPU in float32 can be slower with it, so there it stays off. ``True``/``False`` decide.

    Args:
        channels_last: ``"auto"``, ``True`` or ``False``.
        model: looked at for ``nn.Conv2d`` layers only (the layout matters to nothing else).
        device: where it will run.
        amp_dtype: what :func:`resolve_amp_dtype` gave (None for float32).
    """
    if channels_last not in ("auto", True, False):
        raise ValueError(f"channels_last must be 'auto', True or False; got {channels_last!r}.")
    if channels_last != "auto":
        return bool(channels_last)
    has_conv2d = any(isinstance(module, nn.Conv2d) for module in model.modules())
    return has_conv2d and (device.type == "cpu" or amp_dtype is not None)
