"""How a widget shows itself wherever a notebook runs, and quick pictures for its redraws.

A live widget needs a person's front end (JupyterLab, Notebook, Colab, VS Code). Where none
runs the notebook (papermill, nbconvert, nbval, a static HTML export) a playground shows a
static picture instead: :func:`widget_or_picture` builds the display bundle that does both,
and :func:`front_end_is_interactive` tells the two cases apart.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"
GAP = 2  # white pixels between the tiles of a grid
CAPTION_HEIGHT = 30  # pixels under each mixed image for its two caption lines

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
    if front_end_is_interactive():
        bundle[WIDGET_VIEW_MIMETYPE] = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    if WIDGET_VIEW_MIMETYPE not in bundle or "google.colab" not in sys.modules:
        bundle["image/png"] = base64.b64encode(static_png()).decode("ascii")
    return bundle


def front_end_is_interactive() -> bool:
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
