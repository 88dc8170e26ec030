"""The settings of a profile, grouped by what reads them.

A lesson reads the section it needs (``profile.data.image_size``, ``profile.compare.repeats``)
instead of thirty flat fields. Every section checks its values when it is built, so a bad
override (``epochs=0``) fails at ``get_profile`` with the setting's name, not an epoch loop later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEVICES = ("cpu", "cuda")

# Setting more of the held-out photos aside leaves too few to choose on (ldl.data.splits).
MAX_TEST_FRACTION = 0.9


def _problem(setting: str, value: object, wanted: str) -> str:
    return f"{setting} must be {wanted}, got {value!r}"


def _whole(value: object, *, minimum: int) -> bool:
    # bool is an int subclass, but epochs=True is a mistake, not one epoch.
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_positive_ints(section: object, *names: str, minimum: int = 1) -> list[str]:
    """Problems with the fields ``names`` of ``section`` that are not whole numbers >= ``minimum``."""
    wanted = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
    return [_problem(name, getattr(section, name), wanted) for name in names if not _whole(getattr(section, name), minimum=minimum)]


def check_optional_counts(section: object, *names: str) -> list[str]:
    """Problems with per-class limits: each must be None (no limit) or a positive whole number."""
    return [
        _problem(name, getattr(section, name), "None or a positive whole number")
        for name in names
        if getattr(section, name) is not None and not _whole(getattr(section, name), minimum=1)
    ]


def check_positive_numbers(section: object, *names: str) -> list[str]:
    """Problems with the fields ``names`` of ``section`` that are not numbers above zero."""
    problems = []
    for name in names:
        value = getattr(section, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            problems.append(_problem(name, value, "a number above zero"))
    return problems


def check_fraction(section: object, name: str, *, maximum: float) -> list[str]:
    """Problems with the field ``name`` of ``section`` unless it is a number in [0, ``maximum``]."""
    value = getattr(section, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= maximum:
        return [_problem(name, value, f"a number from 0 to {maximum}")]
    return []


class SettingsError(ValueError):
    """Bad profile settings; ``problems`` holds one line per bad setting, naming it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("Invalid profile setting(s): " + "; ".join(self.problems) + ".")


def raise_problems(problems: list[str]) -> None:
    """One error naming every bad setting, so a user fixes them all at once."""
    if problems:
        raise SettingsError(problems)


@dataclass(frozen=True)
class DataSettings:
    """The photos every lesson loads (``ldl.data.make_loaders``).

    Attributes:
        dataset: registry name of the lesson's default dataset (see ``ldl.data``), or a folder.
        image_size: side of the square images fed to the scratch network, in pixels.
        train_per_class: at most this many training images per class (None: all).
        val_per_class: at most this many validation images per class (None: all).
        batch_size: images per batch.
        num_workers: DataLoader worker processes for the per-sample pipeline.
        falls_back_to_synthetic: a missing sample folder (never downloaded) falls back to the
            generated ``synthetic`` shapes with a warning instead of failing, so a fresh offline
            clone still runs every notebook (the smoke profile).
        test_fraction: share of each class's held-out photos set aside as a test part,
            reported once (``Loaders.test``), in [0, 0.9]; the rest stays the validation part
            that every choice is made on. 0: no test part, validation is every held-out photo.
    """

    dataset: str
    image_size: int
    train_per_class: int | None = None
    val_per_class: int | None = None
    batch_size: int = 32
    num_workers: int = 2
    falls_back_to_synthetic: bool = False
    test_fraction: float = 0.0

    def __post_init__(self) -> None:
        problems = check_positive_ints(self, "image_size", "batch_size")
        problems += check_positive_ints(self, "num_workers", minimum=0)
        problems += check_optional_counts(self, "train_per_class", "val_per_class")
        problems += check_fraction(self, "test_fraction", maximum=MAX_TEST_FRACTION)
        if not isinstance(self.dataset, str) or not self.dataset:
            problems.append(_problem("dataset", self.dataset, "a dataset name or folder"))
        raise_problems(problems)


@dataclass(frozen=True)
class TrainSettings:
    """A lesson's main training run.

    Attributes:
        epochs: training epochs for a lesson's main experiment.
        learning_rate: default learning rate for Adam in the lessons.
        seeds: how many seeds every compared recipe runs with (paired: the same seeds for
            each): one run is one draw, and a difference is read against the spread over seeds.
    """

    epochs: int
    learning_rate: float = 1e-3
    seeds: int = 3

    def __post_init__(self) -> None:
        raise_problems(check_positive_ints(self, "epochs", "seeds") + check_positive_numbers(self, "learning_rate"))


@dataclass(frozen=True)
class GridSettings:
    """The recap CNN when a lesson trains many runs: lesson 1's two recipes and lesson 2's grid, each over several seeds.

    Attributes:
        widths: its four conv widths, small enough for the whole grid to fit the budget.
        hidden: units of its dense layer.
    """

    widths: tuple[int, int, int, int] = (32, 64, 128, 128)
    hidden: int = 512

    def __post_init__(self) -> None:
        problems = check_positive_ints(self, "hidden")
        if len(self.widths) != 4 or not all(_whole(width, minimum=1) for width in self.widths):
            problems.append(_problem("widths", self.widths, "four positive whole numbers"))
        raise_problems(problems)


@dataclass(frozen=True)
class AugmentSettings:
    """Lesson 1's augmentation experiments.

    Attributes:
        zca_size: side of the photos ZCA whitening is fitted on; its covariance matrix has
            (3·S²)² entries, so the smoke profile keeps it small.
    """

    zca_size: int = 32

    def __post_init__(self) -> None:
        raise_problems(check_positive_ints(self, "zca_size"))


@dataclass(frozen=True)
class TransferSettings:
    """Lesson 4: a pretrained network, and the scratch CNN it must beat.

    Attributes:
        backbone: the pretrained network (a name in ``ldl.models.BACKBONES``).
        image_size: the side of its input images; pretrained networks see more in a bigger
            picture than the scratch CNN needs.
        epochs: epochs of each transfer-learning step (head, fine-tuning).
        also: further (backbone, dataset) pairs the lesson runs after the main one, e.g.
            VGG19 on Flowers-102 where a GPU makes it affordable.
        speed_models: networks whose speed the lesson measures on the student's device.
    """

    backbone: str = "efficientnet_lite0"
    image_size: int = 128
    epochs: int = 2
    also: tuple[tuple[str, str], ...] = ()
    speed_models: tuple[str, ...] = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_lite0", "resnet50", "vgg19")

    def __post_init__(self) -> None:
        problems = check_positive_ints(self, "image_size", "epochs")
        raise_problems(problems)


@dataclass(frozen=True)
class CompareSettings:
    """Lesson 5: networks measured side by side, and fine-tuned on the lesson's photos.

    Attributes:
        models: the networks measured side by side.
        image_size: the side of their input images (224: the size their figures are published for).
        batch_size: images per batch when measuring inference throughput.
        train_batch_size: images per batch when measuring training throughput.
        repeats: timed repeats per measurement (the median is reported).
        finetune_extra: networks also fine-tuned (and added to the table) because their
            weights need no download, so the "fine-tuned acc" column has a real entry offline.
        finetune_image_size: the side of the photos when fine-tuning (ViT-B/16 only takes
            224; networks at other sizes are skipped with a message then).
        finetune_epochs: fine-tuning epochs per network (after its head).
        finetune_per_class: at most this many training and validation photos per class when
            fine-tuning (None: the profile's own subset sizes).
        fetch_weights: download the ImageNet weights of ``models`` that are not cached yet
            (about 0.7 GB once, into the torch hub cache); False: use what is cached and random
            weights for the rest.
        finetune_all: fine-tune every network of the table that has weights (False: only
            ``finetune_extra``, where five fine-tunings would not fit the budget).
    """

    models: tuple[str, ...] = ("mobilenet_v3_large", "resnet50", "convnext_tiny", "swin_t", "vit_b_16")
    image_size: int = 224
    batch_size: int = 8
    train_batch_size: int = 4
    repeats: int = 3
    finetune_extra: tuple[str, ...] = ()
    finetune_image_size: int = 224
    finetune_epochs: int = 2
    finetune_per_class: int | None = None
    fetch_weights: bool = True
    finetune_all: bool = True

    def __post_init__(self) -> None:
        problems = check_positive_ints(
            self, "image_size", "batch_size", "train_batch_size", "repeats", "finetune_image_size", "finetune_epochs"
        )
        raise_problems(problems + check_optional_counts(self, "finetune_per_class"))


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets for one way of running the course, in sections.

    Attributes:
        name: ``smoke``, ``cpu`` or ``gpu`` (``auto`` resolves to one of the last two).
        device: ``"cuda"`` or ``"cpu"``; every section's work runs there.
        data: the photos and loaders (:class:`DataSettings`).
        train: a lesson's main training run (:class:`TrainSettings`).
        grid: the recap CNN of a grid of runs (:class:`GridSettings`).
        augment: lesson 1's augmentation experiments (:class:`AugmentSettings`).
        transfer: lesson 4 (:class:`TransferSettings`).
        compare: lesson 5 (:class:`CompareSettings`).
        memory_gib: the most memory (peak anonymous memory of the notebook's kernel, GiB) one
            lesson needs in this profile, as measured by ``make execute-all``; the readiness
            report warns on a machine with less.
    """

    name: str
    device: str
    data: DataSettings
    train: TrainSettings
    grid: GridSettings = field(default_factory=GridSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)
    compare: CompareSettings = field(default_factory=CompareSettings)
    memory_gib: float = 1.5

    def __post_init__(self) -> None:
        problems = check_positive_numbers(self, "memory_gib")
        # "cuda:1" picks a second GPU; anything torch cannot place tensors on is a typo.
        if not isinstance(self.device, str) or self.device.split(":")[0] not in DEVICES:
            problems.append(_problem("device", self.device, "'cpu', 'cuda' or 'cuda:<index>'"))
        raise_problems(problems)


# The sections a profile has, by the name get_profile's overrides use for them.
SECTIONS: dict[str, type] = {
    "data": DataSettings,
    "train": TrainSettings,
    "grid": GridSettings,
    "augment": AugmentSettings,
    "transfer": TransferSettings,
    "compare": CompareSettings,
}
