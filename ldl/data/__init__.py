"""Data for the lessons: named datasets, robust image folders, and the fast tensor path.

The calls a notebook makes::

    from ldl.data import make_loaders, load_index
    loaders = make_loaders(profile)                 # train/val loaders sized by the profile
    val, test = split_held_out(load_index("cats_and_dogs", "validation"), test_fraction=0.5)
    index = load_index("cats_and_dogs", "train")    # the files of one split
"""

from ldl.data.batch_augment import BatchAugment, per_sample_equivalent
from ldl.data.cache import TensorCache, build_tensor_cache, decode_square, default_cache_dir
from ldl.data.folders import ReadableBatches, RobustImageDataset, UnreadableImage, collate_readable, load_rgb
from ldl.data.index import ImageIndex, index_image_folder
from ldl.data.loader import DeviceLoader
from ldl.data.pipeline import Loaders, make_loaders, per_sample_transform, resolve_dataset
from ldl.data.on_disk import dataset_status, load_index, prepare
from ldl.data.registry import REGISTRY, DatasetUnavailable, data_dir
from ldl.data.splits import split_held_out

__all__ = [
    "REGISTRY",
    "ReadableBatches",
    "BatchAugment",
    "DatasetUnavailable",
    "DeviceLoader",
    "ImageIndex",
    "Loaders",
    "RobustImageDataset",
    "TensorCache",
    "UnreadableImage",
    "build_tensor_cache",
    "collate_readable",
    "data_dir",
    "dataset_status",
    "decode_square",
    "default_cache_dir",
    "index_image_folder",
    "load_index",
    "load_rgb",
    "make_loaders",
    "per_sample_equivalent",
    "per_sample_transform",
    "prepare",
    "resolve_dataset",
    "split_held_out",
]
