"""ipywidgets playgrounds: move a slider, see what augmentation does to real photos.

>>> from ldl.widgets import augmentation_playground
>>> playground = augmentation_playground(photos, labels=["cat", "dog"])
>>> playground                      # last line of a cell: shows the sliders and the grid
>>> playground.set(degrees=30, hflip_p=0.5)     # move sliders from Python
>>> print(playground.code())        # the torchvision pipeline of the current sliders

Works with ipywidgets 7 (Colab) and 8 (JupyterLab): only widgets and calls both have.
Where no widget front end runs the notebook (papermill, nbconvert, nbval), the cell shows a
static picture of the grid instead, so executed copies and their HTML export still show it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, replace
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from PIL import Image

from ldl.augment.preview import MixPreview, augment_grid, mix_preview, prepare_images
from ldl.augment.recipe import GROUPS, KNOBS, AugmentSettings, Images, check_seed, pipeline_code
from ldl.widgets.display import GAP, captioned_picture, encode, grid_picture, widget_or_picture

MIXING_KNOBS = ("mixup_alpha", "cutmix_alpha")
GROUP_TITLES = {
    "geometric": "Geometric",
    "photometric": "Photometric",
    "occlusion": "Occlusion",
    "mixing": "Mixing (batches)",
}


def augmentation_playground(
    images: Images,
    *,
    n_augmented: int = 7,
    image_size: int = 160,
    seed: int = 0,
    settings: AugmentSettings | None = None,
    labels: Sequence[str] | None = None,
) -> Playground:
    """Sliders for every augmentation knob, and each photo next to ``n_augmented`` augmented copies.

    Args:
        images: the photos: a ``(N, 3, H, W)`` uint8 tensor, or a list of PIL images,
            uint8 tensors or image files. One or two photos make the quickest redraws.
        n_augmented: augmented copies shown to the right of each photo.
        image_size: side of each square tile, in pixels.
        seed: the random seed of the copies (the seed box and the "new seed" button change it).
        settings: where the sliders start (default: no augmentation at all).
        labels: a class name per photo, shown in the MixUp / CutMix soft labels.

    Returns:
        A :class:`Playground`; it shows itself as the last expression of a cell.
    """
    return Playground(
        images, n_augmented=n_augmented, image_size=image_size, seed=seed, settings=settings, labels=labels
    )


class Playground:
    """The augmentation playground: controls, the live grid, the mixing preview, the code.

    Attributes:
        widget: the root ``VBox`` to display.
        controls: setting name (as in :class:`AugmentSettings`, plus ``"seed"``) -> its widget.
    """

    def __init__(
        self,
        images: Images,
        *,
        n_augmented: int = 7,
        image_size: int = 160,
        seed: int = 0,
        settings: AugmentSettings | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        settings = settings if settings is not None else AugmentSettings()
        if not isinstance(settings, AugmentSettings):
            raise TypeError(f"settings must be an AugmentSettings, got {type(settings).__name__}.")
        self.n_augmented = n_augmented
        self.image_size = image_size
        self.originals = prepare_images(images, image_size)  # (N, 3, S, S) uint8, resized once
        self.labels = list(labels) if labels is not None else None
        self._grid = torch.empty(0, 3, image_size, image_size, dtype=torch.uint8)
        self._mixed: MixPreview | None = None
        self._grid_picture = Image.new("RGB", (1, 1))
        self._mix_picture: Image.Image | None = None  # None while mixing is off
        self._mixed_for: tuple | None = None  # the (alphas, seed) the mixing preview was drawn for
        self._holding = False  # True while set() changes several controls: redraw once at the end
        self.last_redraw_seconds = 0.0

        self.controls: dict[str, widgets.Widget] = _make_controls(settings, seed)
        # JPEG for the live pictures: 5x smaller and faster to encode than PNG for photos.
        # flex-start: natural size, shrunk to fit a narrow page but never stretched.
        self.grid_image = widgets.Image(format="jpeg", layout=widgets.Layout(max_width="100%", align_self="flex-start"))
        self.grid_image.add_class("ldl-grid")
        self.mix_image = widgets.Image(format="jpeg", layout=widgets.Layout(max_width="100%", align_self="flex-start"))
        self.mix_image.add_class("ldl-mix")
        self.mix_note = widgets.HTML()
        self.code_box = widgets.Textarea(layout=widgets.Layout(width="100%", height="260px"))
        self.code_box.add_class("ldl-code")
        self.status = widgets.HTML()
        new_seed = widgets.Button(description="new seed", tooltip="draw another random seed")
        new_seed.on_click(self._on_new_seed)
        reset = widgets.Button(description="reset", tooltip="all sliders back to no augmentation")
        reset.on_click(self._on_reset)
        self.widget = _layout(self, new_seed, reset)

        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    # -- what a notebook calls ---------------------------------------------------------

    @property
    def settings(self) -> AugmentSettings:
        """The settings the controls show now."""
        values = {name: control.value for name, control in self.controls.items() if name != "seed"}
        return AugmentSettings(**values)

    @property
    def seed(self) -> int:
        return int(self.controls["seed"].value)

    def set(self, **values: Any) -> None:
        """Move controls from Python, e.g. ``set(degrees=30, seed=3)``; redraws once.

        Every value is checked first: on a bad one nothing changes and the error says why.
        """
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"Unknown control(s) {unknown}; the playground has: {', '.join(self.controls)}.")
        # Check everything before touching a control: the seed, then the settings' ranges.
        check_seed(values.get("seed", self.seed))
        replace(self.settings, **{name: value for name, value in values.items() if name != "seed"})
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self.redraw()

    def grid(self) -> torch.Tensor:
        """The grid on screen: ``(N * (1 + n_augmented), 3, S, S)`` uint8, photo by photo."""
        return self._grid.clone()

    def mixed(self) -> MixPreview:
        """The MixUp / CutMix preview on screen (no images when mixing is off)."""
        assert self._mixed is not None  # drawn in __init__
        return self._mixed

    def code(self) -> str:
        """The Python source of the current pipeline (what the "copy code" box shows)."""
        classes = len(dict.fromkeys(self.labels)) if self.labels else len(self.originals)
        return pipeline_code(self.settings, self.image_size, num_classes=classes)

    def redraw(self) -> None:
        """Draw the grid, the mixing preview and the code for the current controls."""
        start = time.perf_counter()
        try:
            settings = self.settings
            self._grid = augment_grid(
                self.originals, settings, n_augmented=self.n_augmented, image_size=self.image_size, seed=self.seed
            )
            self._grid_picture = grid_picture(self._grid, columns=1 + self.n_augmented)
            self.grid_image.value = encode(self._grid_picture, "JPEG")
            self._redraw_mixing(settings)
            self.code_box.value = self.code()
        except Exception as error:  # show it in the playground: a callback's traceback would go to a log
            self.status.value = f"<span style='color: #b00'>Could not draw: {error}</span>"
            raise
        self.last_redraw_seconds = time.perf_counter() - start
        self.status.value = f"<small>redrawn in {self.last_redraw_seconds:.2f} s</small>"

    def static_png(self) -> bytes:
        """The grid and the mixing preview as one PNG: what a static notebook shows."""
        pictures = [self._grid_picture] + ([self._mix_picture] if self._mix_picture else [])
        width = max(picture.width for picture in pictures)
        canvas = Image.new("RGB", (width, sum(p.height for p in pictures) + GAP * (len(pictures) - 1)), "white")
        top = 0
        for picture in pictures:
            canvas.paste(picture, (0, top))
            top += picture.height + GAP
        return encode(canvas, "PNG")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget for a front end, a PNG of the grid for everything else.

        Static renderers (nbconvert's HTML export, nbviewer) skip a widget view whose
        state is not saved in the notebook (JupyterLab saves none by default) and take the
        next format they know: the PNG.
        Headless runners (papermill, nbconvert --execute, nbval) do save widget state, so
        there the widget view is left out altogether (see :func:`ldl.widgets.display.front_end_is_interactive`).
        """
        return widget_or_picture(self.widget, self._text_summary(), self.static_png)

    def __repr__(self) -> str:
        return self._text_summary()

    # -- callbacks ---------------------------------------------------------------------

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._holding:
            self.redraw()

    def _on_new_seed(self, button: widgets.Button) -> None:
        self.controls["seed"].value = secrets.randbelow(1_000_000)  # own entropy: torch's RNG untouched

    def _on_reset(self, button: widgets.Button) -> None:
        self.set(**asdict(AugmentSettings()))

    def _redraw_mixing(self, settings: AugmentSettings) -> None:
        """Redraw the MixUp / CutMix row only when its own settings or the seed changed."""
        key = (settings.mixup_alpha, settings.cutmix_alpha, self.seed)
        if key == self._mixed_for:
            return
        self._mixed = mix_preview(
            self.originals, settings, labels=self.labels, n_mixed=4, image_size=self.image_size, seed=self.seed
        )
        self._mixed_for = key
        if self._mixed.images.shape[0]:
            captions = self._mixed.captions()
            self._mix_picture = captioned_picture(self._mixed.images, captions, columns=1 + self.n_augmented)
            self.mix_image.value = encode(self._mix_picture, "JPEG")
            self.mix_image.layout.display = None
            self.mix_note.value = "<b>MixUp / CutMix</b> (whole batches: pairs of photos, soft labels below each)"
        else:
            self._mix_picture = None
            self.mix_image.layout.display = "none"
            needs = "two photos" if len(self.originals) < 2 else "MixUp α or CutMix α above 0"
            self.mix_note.value = f"<i>MixUp / CutMix preview: needs {needs}.</i>"

    def _text_summary(self) -> str:
        changed = self.settings.changed()
        recipe = ", ".join(f"{name}={value}" for name, value in changed.items()) or "no augmentation"
        return (
            f"Augmentation playground: {len(self.originals)} photo(s), each with {self.n_augmented} augmented "
            f"copies at {self.image_size} px, seed {self.seed}; {recipe}. "
            "(Run the notebook in Jupyter or Colab to move the sliders.)"
        )


# ---------------------------------------------------------------------------------------
# Building the widgets
# ---------------------------------------------------------------------------------------


def _make_controls(settings: AugmentSettings, seed: int) -> dict[str, widgets.Widget]:
    """One widget per setting, named as in AugmentSettings, plus the seed box."""
    controls: dict[str, widgets.Widget] = {}
    style = {"description_width": "120px"}
    layout = widgets.Layout(width="380px")
    for knob in KNOBS:
        controls[knob.name] = widgets.FloatSlider(
            value=getattr(settings, knob.name),
            min=knob.low,
            max=knob.high,
            step=knob.step,
            description=knob.label,
            readout_format=".0f" if knob.step >= 1 else ".2f",
            continuous_update=False,  # redraw when the handle is let go, not at every pixel
            style=style,
            layout=layout,
        )
    controls["gridmask"] = widgets.Checkbox(value=settings.gridmask, description="GridMask on", style=style)
    controls["seed"] = widgets.IntText(value=seed, description="seed", style={"description_width": "40px"},
                                       layout=widgets.Layout(width="170px"))
    for name, control in controls.items():
        control.add_class(f"ldl-control-{name}")  # stable names for the browser test
    return controls


def _layout(playground: Playground, new_seed: widgets.Button, reset: widgets.Button) -> widgets.VBox:
    """Controls grouped in an accordion, the seed row, the grid, the mixing row, the code."""
    controls = playground.controls
    sections = []
    for group in GROUPS:
        knobs = [knob for knob in KNOBS if knob.group == group]
        names = [knob.name for knob in knobs]
        if group == "occlusion":
            names.insert(names.index("gridmask_ratio"), "gridmask")
        helps = "<br>".join(f"<b>{knob.label}</b>: {knob.help}" for knob in knobs)
        # What each knob does, beside the sliders (ipywidgets' HTML would space lines 28 px apart).
        help_text = widgets.HTML(f"<div style='line-height: 1.5; font-size: 90%'>{helps}</div>",
                                 layout=widgets.Layout(margin="4px 0 0 24px"))
        sections.append(widgets.HBox([widgets.VBox([controls[name] for name in names]), help_text]))
    accordion = widgets.Accordion(children=sections, selected_index=0)
    for index, group in enumerate(GROUPS):
        accordion.set_title(index, GROUP_TITLES[group])  # set_title: ipywidgets 7 and 8 (titles= is 8 only)
    seed_row = widgets.HBox([controls["seed"], new_seed, reset, playground.status])
    explanation = widgets.HTML(
        f"Each row: the photo (left), then {playground.n_augmented} augmented copies drawn with the seed."
    )
    return widgets.VBox([
        accordion,
        seed_row,
        explanation,
        playground.grid_image,
        playground.mix_note,
        playground.mix_image,
        widgets.HTML("<b>Copy the code</b> of this pipeline:"),
        playground.code_box,
    ])
