"""How much of a network trains: per-group counts, a table for notebooks, torchinfo's summary."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torchinfo
from torch import nn

from ldl.core.tables import html_table
from ldl.models.groups import group_parameters, layer_groups


class GroupCount(NamedTuple):
    """One row of :func:`trainable_summary`."""

    group: str
    trainable: int
    frozen: int


def trainable_summary(model: nn.Module) -> list[GroupCount]:
    """Per layer group (input to output): how many parameters train and how many are frozen."""
    rows = []
    for name, modules in layer_groups(model):
        params = group_parameters(modules)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        rows.append(GroupCount(name, trainable, sum(p.numel() for p in params) - trainable))
    return rows


class TrainableTable:
    """:func:`trainable_summary` as a table: HTML in a notebook, Markdown with ``str()``."""

    columns = ("group", "trainable", "frozen")

    def __init__(self, rows: list[GroupCount]) -> None:
        self.rows = rows

    def _cells(self) -> list[tuple[str, str, str]]:
        total = GroupCount("total", sum(r.trainable for r in self.rows), sum(r.frozen for r in self.rows))
        return [(r.group, f"{r.trainable:,}", f"{r.frozen:,}") for r in [*self.rows, total]]

    def _repr_html_(self) -> str:
        return html_table(self.columns, self._cells())

    def __str__(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|---|---:|---:|"]
        lines += ["| " + " | ".join(row) + " |" for row in self._cells()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def trainable_table(model: nn.Module) -> TrainableTable:
    """A table of trainable and frozen parameters per layer group, with a total row."""
    return TrainableTable(trainable_summary(model))


def summary(model: nn.Module, image_size: int, device: str | torch.device = "cpu", depth: int = 2,
            batch_size: int = 1) -> torchinfo.ModelStatistics:
    """torchinfo's layer table for a ``(batch_size, 3, image_size, image_size)`` input.

    Shows each layer's output size, parameter count and whether it trains. ``device`` is
    passed on because torchinfo, left to itself, moves the model to CUDA when one exists.
    Returns torchinfo's ``ModelStatistics`` (it prints itself).
    """
    return torchinfo.summary(
        model,
        input_size=(batch_size, 3, image_size, image_size),
        device=device,
        depth=depth,
        col_names=("output_size", "num_params", "trainable"),
        verbose=0,
    )
