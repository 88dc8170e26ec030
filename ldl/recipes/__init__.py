"""Whole training recipes a lesson calls in one line, written as numbered steps to read.

- :mod:`ldl.recipes.transfer`: lesson 4's transfer learning (saved features and a head, then
  fine-tuning with differential learning rates), reused by lesson 5.
"""

from ldl.recipes.transfer import TransferResult, default_augment, find_head_lr, transfer_recipe

__all__ = ["TransferResult", "default_augment", "find_head_lr", "transfer_recipe"]
