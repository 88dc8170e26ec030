"""The augmentation playground without a browser: controls, redraws, seeds, code, static fallback."""

from __future__ import annotations

import base64
import io
import re
import sys
import types
from pathlib import Path

import ipywidgets
import pytest
import torch
from PIL import Image

from ldl.widgets import display as display_module
from ldl.augment import apply_seeded
from ldl.augment.recipe import KNOBS, AugmentSettings, setting_names
from ldl.widgets import WIDGET_VIEW_MIMETYPE, Playground, augmentation_playground
from tests.conftest import samples_or_skip

FIXTURE = Path(__file__).parent / "fixtures" / "browser" / "playground.ipynb"
SIZE = 64
N_AUGMENTED = 3


@pytest.fixture(scope="module")
def photo_paths() -> list[Path]:
    samples = samples_or_skip("cats_and_dogs_sample")
    return [sorted((samples / "train" / kind).glob("*.jpg"))[0] for kind in ("cats", "dogs")]


@pytest.fixture
def playground(photo_paths: list[Path]) -> Playground:
    return augmentation_playground(photo_paths, n_augmented=N_AUGMENTED, image_size=SIZE, labels=["cat", "dog"])


def copies(grid: torch.Tensor) -> torch.Tensor:
    """(N * (1 + n), 3, S, S) -> (N, n, 3, S, S): the augmented copies only."""
    return grid.view(-1, 1 + N_AUGMENTED, *grid.shape[1:])[:, 1:]


def originals(grid: torch.Tensor) -> torch.Tensor:
    return grid[:: 1 + N_AUGMENTED]


def test_there_is_a_control_for_every_setting_and_the_seed(playground: Playground) -> None:
    assert set(playground.controls) == set(setting_names()) | {"seed"}
    for knob in KNOBS:
        slider = playground.controls[knob.name]
        assert isinstance(slider, ipywidgets.FloatSlider)
        assert (slider.min, slider.max, slider.step) == (knob.low, knob.high, knob.step)
    assert isinstance(playground.controls["gridmask"], ipywidgets.Checkbox)
    assert isinstance(playground.controls["seed"], ipywidgets.IntText)


def test_controls_are_grouped_in_an_accordion(playground: Playground) -> None:
    accordion = playground.widget.children[0]
    assert isinstance(accordion, ipywidgets.Accordion)
    titles = [accordion.get_title(i) for i in range(len(accordion.children))]  # get_title: ipywidgets 7 and 8
    assert titles == ["Geometric", "Photometric", "Occlusion", "Mixing (batches)"]
    geometric = accordion.children[0].children[0].children  # section: HBox(VBox(controls), help)
    assert playground.controls["degrees"] in geometric and playground.controls["brightness"] not in geometric


def test_identity_grid_shows_the_photo_unchanged(playground: Playground) -> None:
    grid = playground.grid()
    assert grid.shape == (2 * (1 + N_AUGMENTED), 3, SIZE, SIZE) and grid.dtype == torch.uint8
    assert torch.equal(copies(grid), originals(grid).unsqueeze(1).expand_as(copies(grid)))
    picture = Image.open(io.BytesIO(playground.grid_image.value))
    assert picture.size == ((1 + N_AUGMENTED) * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2)


def test_moving_a_slider_redraws_and_reset_returns_to_the_photo(playground: Playground) -> None:
    before_picture, before_code = playground.grid_image.value, playground.code()
    playground.set(degrees=30)
    grid = playground.grid()
    assert not torch.equal(copies(grid), originals(grid).unsqueeze(1).expand_as(copies(grid)))
    assert playground.grid_image.value != before_picture
    assert "RandomAffine(degrees=30" in playground.code() and playground.code() != before_code
    assert playground.code_box.value == playground.code()

    playground.set(**{name: getattr(AugmentSettings(), name) for name in setting_names()})
    grid = playground.grid()
    assert torch.equal(copies(grid), originals(grid).unsqueeze(1).expand_as(copies(grid)))
    assert playground.code() == before_code


def test_a_user_moving_one_control_triggers_the_redraw(playground: Playground) -> None:
    playground.controls["hflip_p"].value = 1.0  # what the front end does when the handle moves
    grid = playground.grid()
    assert torch.equal(copies(grid)[:, 0], originals(grid).flip(-1))
    assert playground.settings == AugmentSettings(hflip_p=1.0)


def test_the_code_box_builds_the_pipeline_on_screen(playground: Playground) -> None:
    playground.set(degrees=20, brightness=0.4, noise_sigma=0.05, gridmask=True, erasing_p=0.5, seed=11)
    namespace: dict = {}
    exec(compile(playground.code_box.value, "<copied code>", "exec"), namespace)
    grid = playground.grid()
    photos = originals(grid).repeat_interleave(N_AUGMENTED, dim=0)
    from_code = apply_seeded(namespace["train_transform"], photos, seed=11)
    assert torch.equal(from_code.view(2, N_AUGMENTED, 3, SIZE, SIZE), copies(grid))


def test_the_seed_box_reproduces_grids(playground: Playground) -> None:
    playground.set(degrees=45, brightness=0.5)
    playground.controls["seed"].value = 3
    first = playground.grid()
    playground.controls["seed"].value = 4
    assert not torch.equal(playground.grid(), first)
    playground.controls["seed"].value = 3
    assert torch.equal(playground.grid(), first)


def test_new_seed_button_draws_another_seed(playground: Playground) -> None:
    playground.set(degrees=45)
    button = next(w for w in playground.widget.children[1].children if getattr(w, "description", "") == "new seed")
    seeds, grids = set(), []
    for _ in range(3):
        button.click()
        seeds.add(playground.seed)
        grids.append(playground.grid())
    assert len(seeds) >= 2  # three draws below a million: at least two differ
    assert any(not torch.equal(grids[0], grid) for grid in grids[1:])


def test_bad_values_change_nothing(playground: Playground) -> None:
    playground.set(degrees=10)
    grid = playground.grid()
    with pytest.raises(ValueError, match="degrees=500"):
        playground.set(hflip_p=0.5, degrees=500)
    with pytest.raises(ValueError, match="Unknown control"):
        playground.set(rotation=10)
    with pytest.raises(ValueError, match="seed"):
        playground.set(seed=-1)
    assert playground.controls["hflip_p"].value == 0.0 and playground.controls["degrees"].value == 10
    assert torch.equal(playground.grid(), grid)


def test_mixing_preview_shows_soft_labels(playground: Playground) -> None:
    assert playground.mixed().images.shape[0] == 0 and playground.mix_image.layout.display == "none"
    assert "MixUp" in playground.mix_note.value
    playground.set(mixup_alpha=0.4, cutmix_alpha=1.0)
    mixed = playground.mixed()
    assert mixed.kinds == ["MixUp"] * 4 + ["CutMix"] * 4 and mixed.classes == ["cat", "dog"]
    assert torch.allclose(mixed.soft_labels.sum(dim=1), torch.ones(8))
    assert playground.mix_image.layout.display is None and playground.mix_image.value
    assert "mixers = [MixUp(alpha=0.4, num_classes=2), CutMix(alpha=1, num_classes=2)]" in playground.code()


def test_one_photo_works_and_says_mixing_needs_two(photo_paths: list[Path]) -> None:
    settings = AugmentSettings(mixup_alpha=1.0)
    single = augmentation_playground(photo_paths[:1], n_augmented=2, image_size=SIZE, settings=settings)
    assert single.grid().shape == (3, 3, SIZE, SIZE)
    assert "two photos" in single.mix_note.value


def test_static_picture_for_notebooks_without_a_widget_front_end(playground: Playground) -> None:
    playground.set(mixup_alpha=0.4, degrees=10)
    bundle = playground._repr_mimebundle_()
    assert WIDGET_VIEW_MIMETYPE not in bundle  # no kernel here: nothing could show the widget
    picture = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert picture.format == "PNG" and picture.width == (1 + N_AUGMENTED) * (SIZE + 2) + 2
    assert picture.height > 2 * (SIZE + 2)  # the grid and, below it, the mixing row
    assert "degrees=10" in bundle["text/plain"] and "mixup_alpha=0.4" in bundle["text/plain"]


def test_live_front_end_gets_the_widget_and_the_picture(
    playground: Playground, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(display_module, "front_end_is_interactive", lambda: True)
    bundle = playground._repr_mimebundle_()
    assert bundle[WIDGET_VIEW_MIMETYPE]["model_id"] == playground.widget.model_id
    assert set(bundle) == {WIDGET_VIEW_MIMETYPE, "image/png", "text/plain"}
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert set(playground._repr_mimebundle_()) == {WIDGET_VIEW_MIMETYPE, "text/plain"}


def test_headless_runners_are_told_apart_from_people(monkeypatch: pytest.MonkeyPatch) -> None:
    """papermill, nbconvert and nbval send allow_stdin=False; JupyterLab, Colab, VS Code send True."""
    import IPython

    class Kernel:
        def __init__(self, allow_stdin: bool) -> None:
            self.parent = {"header": {"msg_type": "execute_request"}, "content": {"allow_stdin": allow_stdin}}

        def get_parent(self, channel: str = "shell") -> dict:
            return self.parent

    for allow_stdin in (True, False):
        shell = types.SimpleNamespace(kernel=Kernel(allow_stdin))
        monkeypatch.setattr(IPython, "get_ipython", lambda shell=shell: shell)
        assert display_module.front_end_is_interactive() is allow_stdin
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # a script: no front end at all
    assert display_module.front_end_is_interactive() is False


@pytest.mark.notebook
def test_executed_notebook_html_shows_the_static_grid(tmp_path: Path, photo_paths: list[Path]) -> None:
    """The course's own path: papermill runs the notebook, nbconvert exports it to HTML."""
    from ldl.course import execute as course

    result = course.run_notebook(
        FIXTURE, profile="smoke", build_dir=tmp_path, cell_timeout=120,
        kernel_name=course.kernel_for_this_python(), device="cpu",
    )
    assert result["status"] == "ok", result["error"]
    html_file = tmp_path / "playground.html"
    course.export_html(Path(str(result["output"])), html_file)
    html = html_file.read_text()
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert images, "the playground cell shows no PNG in the exported HTML"
    picture = Image.open(io.BytesIO(base64.b64decode(images[-1])))
    assert picture.width == 8 * (160 + 2) + 2 and picture.height >= 2 * (160 + 2)
    # Only the static picture: a widget view would need the widgets' JavaScript from a CDN.
    assert '<script type="application/vnd.jupyter.widget-view+json"' not in html
