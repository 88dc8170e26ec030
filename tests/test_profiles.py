from __future__ import annotations

import pytest
import torch

import ldl.profiles.choose
from ldl.course import execute, readiness
from ldl.profiles import PROFILES, get_profile, override, profile_choices, resolve_name


def test_every_profile_defines_every_size() -> None:
    assert set(PROFILES) == {"smoke", "cpu", "gpu"}
    for profile in PROFILES.values():
        assert profile.data.image_size >= 46, "the recap CNN needs at least 46 px"
        assert profile.train.epochs > 0 and profile.data.batch_size > 0


def test_auto_follows_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_name("auto") == "gpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_name("auto") == "cpu"


def test_notebooks_and_the_readiness_report_resolve_auto_through_one_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    monkeypatch.delenv("LDL_DATASET", raising=False)
    asked: list[bool] = []

    def pick_smoke(cuda_available: bool) -> str:
        asked.append(cuda_available)
        return "smoke"

    monkeypatch.setattr(ldl.profiles.choose, "auto_name", pick_smoke)
    monkeypatch.setattr(readiness, "pretrained_weights_warnings", lambda profile: [])
    assert get_profile("auto").name == "smoke"
    # The report follows too: only the smoke profile falls back to shapes for its missing sample.
    rows = [{"name": "cats_and_dogs_sample", "status": "unavailable", "path": "/data/x", "urls": []}]
    warnings = readiness.profile_warnings("auto", {"cuda_available": True}, rows)
    assert len(warnings) == 1 and "smoke profile" in warnings[0] and "fall back" in warnings[0]
    assert asked[-1] is True  # the report's machine, not this process, decides


def test_execute_all_offers_the_profiles_own_names() -> None:
    assert profile_choices() == (*PROFILES, "auto")
    assert execute.PROFILE_CHOICES == profile_choices()


def test_environment_variable_overrides_the_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDL_PROFILE", "smoke")
    assert get_profile("gpu").name == "smoke"
    monkeypatch.setenv("LDL_PROFILE", "")
    assert get_profile("smoke").name == "smoke"


def test_unknown_profile_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    with pytest.raises(ValueError, match="smoke, cpu, gpu, auto"):
        get_profile("huge")


def test_unknown_profile_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDL_PROFILE", "huge")
    with pytest.raises(ValueError, match="'huge'.*LDL_PROFILE.*smoke, cpu, gpu, auto"):
        get_profile("smoke")


def test_gpu_without_cuda_warns_and_uses_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="no CUDA"):
        profile = get_profile("gpu")
    assert profile.device == "cpu" and profile.data.image_size == PROFILES["gpu"].data.image_size


def test_overrides_replace_single_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    profile = get_profile("smoke", epochs=3)
    assert profile.train.epochs == 3 and profile.data.image_size == PROFILES["smoke"].data.image_size


def test_overrides_take_flat_names_and_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    profile = get_profile("smoke", image_size=32, compare=dict(repeats=1), transfer={"epochs": 4})
    assert profile.data.image_size == 32 and profile.compare.repeats == 1 and profile.transfer.epochs == 4
    # The rest of each section is the preset's.
    assert profile.compare.batch_size == PROFILES["smoke"].compare.batch_size
    assert profile.transfer.image_size == PROFILES["smoke"].transfer.image_size
    assert override(profile, device="cpu") == profile


def test_bad_override_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    with pytest.raises(ValueError, match="epochs must be a positive whole number, got 0") as caught:
        get_profile("smoke", epochs=0, batch_size=-4)
    assert "batch_size" in str(caught.value) and "-4" in str(caught.value)
    with pytest.raises(ValueError, match=r"compare\.repeats"):
        get_profile("smoke", compare=dict(repeats=0))
    with pytest.raises(ValueError, match="train_per_class"):
        get_profile("smoke", train_per_class=2.5)
    with pytest.raises(ValueError, match="device"):
        get_profile("smoke", device="tpu")


def test_unknown_override_names_it_and_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    with pytest.raises(ValueError, match="epoch\\b.*Valid settings:.*epochs.*compare=dict\\(.*repeats"):
        get_profile("smoke", epoch=3)
    with pytest.raises(ValueError, match=r"compare=dict\(speed=\.\.\.\)"):
        get_profile("smoke", compare=dict(speed=1))


def test_only_the_smoke_preset_falls_back_to_synthetic_shapes() -> None:
    assert [name for name, profile in PROFILES.items() if profile.data.falls_back_to_synthetic] == ["smoke"]
    assert override(PROFILES["smoke"], falls_back_to_synthetic=False).data.falls_back_to_synthetic is False


def test_every_network_a_profile_names_is_in_the_backbone_registry() -> None:
    from ldl.models import BACKBONES

    for profile in PROFILES.values():
        named = {profile.transfer.backbone, *profile.transfer.speed_models, *profile.compare.models}
        named |= {backbone for backbone, _ in profile.transfer.also} | set(profile.compare.finetune_extra)
        assert named <= set(BACKBONES), (profile.name, named - set(BACKBONES))
    # The smoke profile must run offline: its pretrained network's weights ship with a pip package.
    assert PROFILES["smoke"].transfer.backbone == "efficientnet_lite0"


def test_lesson5_fills_its_fine_tuned_column_offline_in_smoke() -> None:
    from ldl.models import backbone_spec

    smoke = PROFILES["smoke"]
    # At least one network whose weights need no download, so the column is never all empty.
    assert smoke.compare.finetune_extra
    assert all(backbone_spec(name).weights is None for name in smoke.compare.finetune_extra)
    for profile in PROFILES.values():
        assert profile.compare.finetune_epochs >= 1 and profile.compare.finetune_image_size >= 32
        # Where the downloaded networks are all fine-tuned (gpu), ViT-B/16 takes only 224 px.
        if profile.compare.finetune_all:
            assert profile.compare.finetune_image_size == 224, profile.name


def test_profiles_import_only_the_shared_base() -> None:
    import subprocess
    import sys

    code = "import sys, ldl.profiles; print(sorted(m for m in sys.modules if m.startswith('ldl.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # The shared base ldl.core (the device rule) is the one wing below profiles.
    assert all(name.startswith(("'ldl.profiles", "'ldl.core")) for name in loaded.strip("[]\n").split(", ")), loaded
