from __future__ import annotations

import pytest
import torch

from ldl.profiles import PROFILES, get_profile, resolve_name


def test_every_profile_defines_every_size() -> None:
    assert set(PROFILES) == {"smoke", "cpu", "gpu"}
    for profile in PROFILES.values():
        assert profile.image_size >= 46, "the recap CNN needs at least 46 px"
        assert profile.epochs > 0 and profile.batch_size > 0 and profile.models


def test_auto_follows_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_name("auto") == "gpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_name("auto") == "cpu"


def test_environment_variable_overrides_the_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDL_PROFILE", "smoke")
    assert get_profile("gpu").name == "smoke"
    monkeypatch.setenv("LDL_PROFILE", "")
    assert get_profile("smoke").name == "smoke"


def test_unknown_profile_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    with pytest.raises(ValueError, match="smoke, cpu, gpu, auto"):
        get_profile("huge")


def test_gpu_without_cuda_warns_and_uses_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="no CUDA"):
        profile = get_profile("gpu")
    assert profile.device == "cpu" and profile.image_size == PROFILES["gpu"].image_size


def test_overrides_replace_single_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    profile = get_profile("smoke", epochs=3)
    assert profile.epochs == 3 and profile.image_size == PROFILES["smoke"].image_size


def test_every_network_a_profile_names_is_in_the_backbone_registry() -> None:
    from ldl.models import BACKBONES

    for profile in PROFILES.values():
        named = {profile.transfer_backbone, *profile.speed_models, *profile.compare_models, *profile.models}
        named |= {backbone for backbone, _ in profile.transfer_also} | set(profile.compare_finetune_extra)
        assert named <= set(BACKBONES), (profile.name, named - set(BACKBONES))
    # The smoke profile must run offline: its pretrained network's weights ship with a pip package.
    assert PROFILES["smoke"].transfer_backbone == "efficientnet_lite0"


def test_lesson5_fills_its_fine_tuned_column_offline_in_smoke() -> None:
    from ldl.models import backbone_spec

    smoke = PROFILES["smoke"]
    # At least one network whose weights need no download, so the column is never all empty.
    assert smoke.compare_finetune_extra
    assert all(backbone_spec(name).weights is None for name in smoke.compare_finetune_extra)
    for profile in PROFILES.values():
        assert profile.compare_finetune_epochs >= 1 and profile.compare_finetune_image_size >= 32
        # Where the downloaded networks are all fine-tuned (gpu), ViT-B/16 takes only 224 px.
        if profile.compare_finetune_all:
            assert profile.compare_finetune_image_size == 224, profile.name
