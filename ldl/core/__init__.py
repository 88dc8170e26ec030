"""The small shared base every wing may import, and which imports no other wing.

- :mod:`ldl.core.constants`: ImageNet's channel statistics;
- :mod:`ldl.core.device`: the device, mixed-precision and channels-last rule;
- :mod:`ldl.core.files`: atomic file writes (a reader never sees half a file);
- :mod:`ldl.core.tables`: HTML and Markdown tables, and the lessons' ``ResultsTable``;
- :mod:`ldl.core.memory`: a kernel's peak memory, and handing freed memory back.
"""

from ldl.core.constants import IMAGENET_MEAN, IMAGENET_STD
from ldl.core.device import resolve_amp_dtype, resolve_channels_last, resolve_device
from ldl.core.files import atomic_torch_save, write_atomically, write_json_atomically, write_text_atomically
from ldl.core.memory import PeakMemory, release_freed_memory
from ldl.core.tables import ResultsTable, format_cell, html_table, markdown_table

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PeakMemory",
    "ResultsTable",
    "atomic_torch_save",
    "format_cell",
    "html_table",
    "markdown_table",
    "release_freed_memory",
    "resolve_amp_dtype",
    "resolve_channels_last",
    "resolve_device",
    "write_atomically",
    "write_json_atomically",
    "write_text_atomically",
]
