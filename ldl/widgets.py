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

import base64
import io
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import ipywidgets as widgets
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from ldl.augment.recipe import (
    GROUPS,
    KNOBS,
    AugmentSettings,
    Images,
    MixPreview,
    augment_grid,
    check_seed,
    mix_preview,
    pipeline_code,
    prepare_images,
)

WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"
GAP = 2  # white pixels between the tiles of a grid
CAPTION_HEIGHT = 30  # pixels under each mixed image for its two caption lines
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
        there the widget view is left out altogether (see :func:`_front_end_is_interactive`).
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


# ---------------------------------------------------------------------------------------
# Pictures: tensors -> JPEG or PNG bytes, without matplotlib (a redraw must be quick)
# ---------------------------------------------------------------------------------------


def grid_picture(tiles: torch.Tensor, columns: int) -> Image.Image:
    """``(K, 3, S, S)`` uint8 tiles -> one picture with ``columns`` tiles per row."""
    grid = make_grid(tiles, nrow=columns, padding=GAP, pad_value=255)  # (3, H, W) uint8
    return Image.fromarray(grid.permute(1, 2, 0).numpy())


def captioned_picture(tiles: torch.Tensor, captions: Sequence[str], columns: int) -> Image.Image:
    """Tiles with a caption under each (``"Kind: a 0.62 b 0.38"`` is split into two lines)."""
    count, _, size, _ = tiles.shape
    columns = min(columns, count)
    rows = -(-count // columns)  # ceiling division
    cell_width, cell_height = size + GAP, size + CAPTION_HEIGHT
    canvas = Image.new("RGB", (columns * cell_width - GAP, rows * cell_height), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (tile, caption) in enumerate(zip(tiles, captions)):
        left, top = (index % columns) * cell_width, (index // columns) * cell_height
        canvas.paste(Image.fromarray(tile.permute(1, 2, 0).numpy()), (left, top))
        kind, _, shares = caption.partition(": ")
        draw.text((left + 2, top + size + 2), kind, fill="black")
        draw.text((left + 2, top + size + 15), shares, fill="black")
    return canvas


def encode(picture: Image.Image, image_format: str) -> bytes:
    """A picture as ``"JPEG"`` or ``"PNG"`` bytes, tuned for speed (a redraw must be quick)."""
    buffer = io.BytesIO()
    if image_format == "JPEG":
        picture.save(buffer, format="JPEG", quality=90)
    else:
        # Level 1: a photo grid barely compresses anyway; encoding fast matters more here.
        picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def widget_or_picture(widget: widgets.Widget, text: str, static_png: Callable[[], bytes]) -> dict[str, Any]:
    """A display bundle: the live widget for a person's front end, a PNG for everything else.

    Static renderers (nbconvert's HTML export, nbviewer) skip a widget view whose state is
    not saved and take the next format they know: the PNG. Headless runners (papermill,
    nbconvert --execute, nbval) do save widget state, so there the widget view is left out.
    Colab does not document which format it prefers when given both: there, only the widget.
    """
    bundle: dict[str, Any] = {"text/plain": text}
    if _front_end_is_interactive():
        bundle[WIDGET_VIEW_MIMETYPE] = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    if WIDGET_VIEW_MIMETYPE not in bundle or "google.colab" not in sys.modules:
        bundle["image/png"] = base64.b64encode(static_png()).decode("ascii")
    return bundle


def _front_end_is_interactive() -> bool:
    """Whether a person's front end (JupyterLab, Notebook, Colab, VS Code) asked for this cell.

    Front ends that a person types into send their execute requests with
    ``allow_stdin=True`` (``input()`` works there); headless runners (papermill,
    nbconvert --execute, nbval) send ``False``, since nobody could answer. Outside a kernel
    (a script, a test) there is no front end at all.
    """
    from IPython import get_ipython  # noqa: PLC0415 - IPython comes with ipywidgets

    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return False
    if hasattr(kernel, "get_parent"):  # ipykernel >= 6
        content = kernel.get_parent("shell").get("content", {})
        if "allow_stdin" in content:
            return bool(content["allow_stdin"])
    return bool(getattr(kernel, "_allow_stdin", True))


# ---------------------------------------------------------------------------------------
# Lesson 3: initialisation and depth
# ---------------------------------------------------------------------------------------

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda h: h,
}
SHOWN_LAYERS = 6  # histogram panels: a subset spread over the depth


def init_playground(
    *,
    depth: int = 10,
    width: int = 64,
    gain: float = 1.0,
    activation: str = "tanh",
    samples: int = 512,
    seed: int = 0,
) -> InitPlayground:
    """Sliders for depth and gain, a menu for the activation, and the activations of every layer.

    A random input ``(samples, width)`` goes through ``depth`` layers ``h = f(h @ W.T)``
    whose weights are drawn from N(0, gain² / width). Gain 1 keeps the variance of a linear
    layer's output equal to its input's (Xavier/LeCun); move it and watch the deep layers'
    activations collapse to zero or saturate.

    Returns:
        An :class:`InitPlayground`; it shows itself as the last expression of a cell.
    """
    return InitPlayground(depth=depth, width=width, gain=gain, activation=activation, samples=samples, seed=seed)


def deep_activations(
    depth: int, width: int, gain: float, activation: str, samples: int, seed: int
) -> list[torch.Tensor]:
    """The ``(samples, width)`` float32 activations after each of ``depth`` random layers, first layer first."""
    generator = torch.Generator().manual_seed(seed)  # the same weights for the same settings
    f = ACTIVATIONS[activation]
    h = torch.randn(samples, width, generator=generator)
    outputs = []
    for _ in range(depth):
        # std gain / sqrt(fan_in): each output sums fan_in products, so its variance is gain² x the input's.
        weight = torch.randn(width, width, generator=generator) * (gain / width**0.5)
        h = f(h @ weight.T)
        outputs.append(h)
    return outputs


class InitPlayground:
    """Depth, gain and activation controls above per-layer activation histograms.

    Attributes:
        widget: the root ``VBox`` to display.
        controls: ``"depth"``, ``"gain"``, ``"activation"`` -> their widgets.
    """

    def __init__(self, *, depth: int, width: int, gain: float, activation: str, samples: int, seed: int) -> None:
        self.width, self.samples, self.seed = width, samples, seed
        self.controls: dict[str, widgets.Widget] = {
            "depth": widgets.IntSlider(value=depth, min=2, max=30, description="depth", continuous_update=False),
            "gain": widgets.FloatSlider(value=gain, min=0.1, max=3.0, step=0.05, description="gain",
                                        readout_format=".2f", continuous_update=False),
            "activation": widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
        }
        self._check(depth=depth, gain=gain, activation=activation)
        self._activations: list[torch.Tensor] = []
        self._png = b""
        self._holding = False
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", align_self="flex-start"))
        self.widget = widgets.VBox([
            widgets.HBox(list(self.controls.values())),
            widgets.HTML(f"A random input through the layers, each of width {width}, weights ~ N(0, gain²/{width}). "
                         "Top: activations of a few layers; bottom: their std at every layer."),
            self.image,
        ])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    def _check(self, **values: Any) -> None:
        """Refuse values the controls cannot show (ipywidgets would silently clip them)."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"Unknown control(s) {unknown}; the playground has: {', '.join(self.controls)}.")
        for name in ("depth", "gain"):
            if name in values and not self.controls[name].min <= values[name] <= self.controls[name].max:
                control = self.controls[name]
                raise ValueError(f"{name} must be between {control.min} and {control.max}; got {values[name]}.")
        if "activation" in values and values["activation"] not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}; got {values['activation']!r}.")

    def set(self, **values: Any) -> None:
        """Move controls from Python, e.g. ``set(depth=20, gain=0.5)``; redraws once."""
        self._check(**values)  # all checked first: on a bad value nothing changes
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self.redraw()

    def layer_stds(self) -> list[float]:
        """The standard deviation of each layer's activations for the current settings, first layer first."""
        return [float(h.std()) for h in self._activations]

    def redraw(self) -> None:
        """Recompute the forward pass and draw its histograms."""
        self._activations = deep_activations(
            self.controls["depth"].value, self.width, self.controls["gain"].value,
            self.controls["activation"].value, self.samples, self.seed,
        )
        self._png = self._draw()
        self.image.value = self._png

    def static_png(self) -> bytes:
        """The histograms as a PNG: what a static notebook shows."""
        return self._png

    def _draw(self) -> bytes:
        """Histograms of a few layers (top) and every layer's std (bottom), as PNG bytes."""
        # A Figure without pyplot: nothing is left open in pyplot's list, however often it redraws.
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415

        depth = len(self._activations)
        shown = sorted({round(i * (depth - 1) / (SHOWN_LAYERS - 1)) for i in range(SHOWN_LAYERS)})
        figure = Figure(figsize=(2.0 * len(shown), 4.4), layout="constrained")
        FigureCanvasAgg(figure)
        grid = figure.add_gridspec(2, len(shown))
        for column, index in enumerate(shown):
            ax = figure.add_subplot(grid[0, column])
            values = self._activations[index].flatten().numpy()
            ax.hist(values, bins=40, color="tab:blue")
            ax.set_title(f"layer {index + 1}\nstd {values.std():.2g}", fontsize=9)
            ax.set_yticks([])
            ax.tick_params(labelsize=7)
        ax_std = figure.add_subplot(grid[1, :])
        ax_std.plot(range(1, depth + 1), self.layer_stds(), "o-", markersize=3)
        ax_std.set_yscale("log")
        ax_std.set(xlabel="layer", ylabel="activation std (log)")
        ax_std.grid(alpha=0.3, which="both")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._holding:
            self.redraw()

    def _text_summary(self) -> str:
        values = ", ".join(f"{name}={control.value}" for name, control in self.controls.items())
        return f"Init playground: {values}. (Run the notebook in Jupyter or Colab to move the sliders.)"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget for a front end, a PNG for static renderers (as :class:`Playground` does)."""
        return widget_or_picture(self.widget, self._text_summary(), self.static_png)

    def __repr__(self) -> str:
        return self._text_summary()
