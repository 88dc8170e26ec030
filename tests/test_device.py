"""The one device, mixed-precision and channels-last rule, shared by the Trainer, the LR finder and the benchmarks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ldl.core
from ldl.core import device as core_device
from ldl.core.device import resolve_amp_dtype, resolve_channels_last, resolve_device

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_device_is_cuda_only_when_a_gpu_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == CUDA
    assert resolve_device("cpu") == CPU and resolve_device(torch.device("cuda:1")) == torch.device("cuda:1")


def test_autocast_is_off_on_the_cpu_and_by_gpu_generation_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_amp_dtype("auto", CPU) is None  # float32: autocast is slower on a CPU
    assert resolve_amp_dtype(False, CUDA) is None
    for choice in (True, "bf16", "fp16"):
        with pytest.raises(ValueError, match="needs a CUDA device"):
            resolve_amp_dtype(choice, CPU)
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        resolve_amp_dtype("float16", CUDA)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # a T4
    assert resolve_amp_dtype("auto", CUDA) == torch.float16
    assert resolve_amp_dtype(True, CUDA) == torch.float16
    assert resolve_amp_dtype("bf16", CUDA) == torch.bfloat16  # asked for: given
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))  # an A100
    assert resolve_amp_dtype("auto", CUDA) == torch.bfloat16
    assert resolve_amp_dtype("fp16", CUDA) == torch.float16


def test_channels_last_auto_needs_convolutions_and_the_cpu_or_mixed_precision() -> None:
    conv, linear = nn.Sequential(nn.Conv2d(3, 4, 3)), nn.Linear(4, 2)
    assert resolve_channels_last("auto", conv, CPU, None)
    assert not resolve_channels_last("auto", linear, CPU, None)
    assert not resolve_channels_last("auto", conv, CUDA, None)
    assert resolve_channels_last("auto", conv, CUDA, torch.float16)
    assert resolve_channels_last(True, linear, CUDA, None) and not resolve_channels_last(False, conv, CPU, None)


def test_every_user_asks_the_same_functions() -> None:
    from ldl.measure import bench, features
    from ldl.train import lr_finder, trainer

    assert ldl.core.resolve_device is core_device.resolve_device
    assert {"resolve_device", "resolve_amp_dtype", "resolve_channels_last"} <= set(ldl.core.__all__)
    assert trainer.resolve_device is core_device.resolve_device
    assert trainer.resolve_amp_dtype is bench.resolve_amp_dtype is core_device.resolve_amp_dtype
    assert trainer.resolve_channels_last is core_device.resolve_channels_last
    assert features.resolve_device is lr_finder.resolve_device is core_device.resolve_device
