"""Memory: the peak of a child process (the notebook's kernel) while it runs, and what the machine allows.

:func:`memory_info` reads the machine's RAM and a container's cgroup limit (Binder caps a
session below the machine's RAM); the readiness report compares them with a profile's needs.

``make execute-all`` records how much memory each notebook needed, so that a profile's
``memory_gib`` is measured rather than guessed::

    with PeakMemory() as memory:      # polls the ipykernel child of this process
        papermill.execute_notebook(...)
    memory.peak_gib                   # e.g. 1.23: anonymous memory, or None where it could not be measured
    memory.peak_rss_gib               # e.g. 1.61: resident set, shared library pages included

A background thread looks every ``interval_s`` seconds for child processes of this one
whose command line matches (``ipykernel`` by default), adds up two figures over each match
and its own children (DataLoader workers), and keeps the largest sum of each:

- ``peak_gib``, **anonymous memory** (``RssAnon``): tensors, arrays, Python objects, what the
  notebook itself allocates. This is what runs out on a small machine: the pages of PyTorch's
  shared libraries (0.3 GiB of a CUDA build here) are file-backed, and the kernel drops
  and rereads them under pressure instead of killing the process. It is sampled, so a spike
  shorter than ``interval_s`` can be missed; a training step on a CPU lasts longer.
- ``peak_rss_gib``, the **resident-set high-water mark** (``VmHWM``), which the kernel updates
  on every page fault and so misses nothing, but counts those library pages too.

Where there is no ``/proc`` (macOS, Windows) psutil's current RSS stands in for both.

psutil (a Jupyter dependency) is imported lazily; without it, or when anything goes wrong
while measuring, the peak is ``None``: measuring must never break a course run.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

GIB = 2**30
KERNEL_MARKERS = ("ipykernel",)  # matches both `-m ipykernel_launcher` and `-m ipykernel`


def memory_bytes(process: Any) -> tuple[int, int]:
    """``(anonymous memory now, peak resident set so far)`` of a psutil ``process``, in bytes.

    On Linux from ``/proc/<pid>/status`` (``RssAnon``, ``VmHWM``); elsewhere both are
    psutil's current RSS.

    Raises:
        psutil.Error or OSError: the process is gone or cannot be read.
    """
    if sys.platform.startswith("linux"):
        fields = {}
        try:
            with open(f"/proc/{process.pid}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith(("RssAnon:", "VmHWM:")):
                        name, value = line.split()[:2]
                        fields[name] = int(value) * 1024  # the kernel writes them in kB
        except (OSError, ValueError, IndexError):
            pass  # gone (psutil says so below), or an odd /proc: fall back to the RSS
        if len(fields) == 2:
            return fields["RssAnon:"], fields["VmHWM:"]
    rss = int(process.memory_info().rss)
    return rss, rss


class PeakMemory:
    """Context manager that records the peak memory of matching child processes.

    Args:
        markers: substrings of the command line that mark a process to watch (a kernel).
        interval_s: seconds between two polls.
        parent_pid: whose descendants to search; ``None``: this process.

    After the ``with`` block, :attr:`peak_gib` (anonymous memory) and :attr:`peak_rss_gib`
    (resident set) are the largest sums seen, in GiB, or ``None`` when psutil is missing or
    no matching process was ever seen.
    """

    def __init__(
        self, markers: Sequence[str] = KERNEL_MARKERS, *, interval_s: float = 0.2, parent_pid: int | None = None
    ) -> None:
        self.markers = tuple(markers)
        self.interval_s = interval_s
        self.parent_pid = os.getpid() if parent_pid is None else parent_pid
        self.peak_bytes: int | None = None  # anonymous memory
        self.peak_rss_bytes: int | None = None  # resident set, library pages included
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._psutil: Any = None

    @property
    def peak_gib(self) -> float | None:
        """The peak of anonymous memory in GiB (3 decimals), or ``None`` where it could not be measured."""
        return None if self.peak_bytes is None else round(self.peak_bytes / GIB, 3)

    @property
    def peak_rss_gib(self) -> float | None:
        """The peak resident set in GiB (3 decimals), or ``None`` where it could not be measured."""
        return None if self.peak_rss_bytes is None else round(self.peak_rss_bytes / GIB, 3)

    def __enter__(self) -> PeakMemory:
        try:
            import psutil
        except ImportError:
            return self  # nothing to measure with: the peak stays None
        self._psutil = psutil
        # A daemon thread: even if a poll were stuck, it could not keep Python from exiting.
        self._thread = threading.Thread(target=self._run, name="ldl-peak-memory", daemon=True)
        try:
            self._thread.start()
        except RuntimeError:  # no more threads can be started: measure nothing rather than fail
            self._thread = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            # Bounded: a poll takes milliseconds, and the thread is a daemon if one ever hangs.
            self._thread.join(timeout=max(2.0, 10 * self.interval_s))

    def _run(self) -> None:
        """Poll until stopped; a failure only ends the measuring, never the caller."""
        try:
            while True:
                self._poll()
                if self._stop.wait(self.interval_s):
                    break
            self._poll()  # one last look at whatever is still alive
        except Exception:  # noqa: BLE001 - measuring is optional; keep what was seen so far
            return

    def _poll(self) -> None:
        """Add up both figures over every matching process and its children; keep the maxima."""
        sizes = [self._tree_bytes(process) for process in self._matching_processes()]
        anonymous, resident = sum(a for a, _ in sizes), sum(r for _, r in sizes)
        if anonymous and (self.peak_bytes is None or anonymous > self.peak_bytes):
            self.peak_bytes = anonymous
        if resident and (self.peak_rss_bytes is None or resident > self.peak_rss_bytes):
            self.peak_rss_bytes = resident

    def _matching_processes(self) -> list[Any]:
        """Descendants of ``parent_pid`` whose command line holds one of the markers."""
        psutil = self._psutil
        try:
            descendants = psutil.Process(self.parent_pid).children(recursive=True)
        except psutil.Error:
            return []
        matches = []
        for process in descendants:
            try:
                command = " ".join(process.cmdline())
            except psutil.Error:  # gone, or a zombie, between listing and reading
                continue
            if any(marker in command for marker in self.markers):
                matches.append(process)
        # A match's own children are counted with it (see _tree_bytes), not a second time.
        matched = {process.pid for process in matches}
        return [process for process in matches if not self._has_matched_ancestor(process, matched)]

    def _has_matched_ancestor(self, process: Any, matched: set[int]) -> bool:
        try:
            return any(parent.pid in matched for parent in process.parents())
        except self._psutil.Error:
            return False

    def _tree_bytes(self, process: Any) -> tuple[int, int]:
        """:func:`memory_bytes` of ``process`` plus those of its children (0 for any that vanished)."""
        psutil = self._psutil
        try:
            family = [process, *process.children(recursive=True)]
        except psutil.Error:
            return 0, 0
        anonymous = resident = 0
        for member in family:
            try:
                member_anonymous, member_resident = memory_bytes(member)
            except (psutil.Error, OSError):
                continue
            anonymous += member_anonymous
            resident += member_resident
        return anonymous, resident


def release_freed_memory() -> bool:
    """Hand memory that Python and PyTorch have freed back to the operating system (Linux/glibc).

    After ``del model`` the memory is free inside this process, but glibc's allocator keeps
    much of it for later allocations, so the process still holds it: on a 2 GiB Binder,
    a notebook that builds five networks one after another would hold all of them.
    ``malloc_trim(0)`` returns every free page. Elsewhere (macOS, Windows, musl) this does
    nothing. Returns whether memory was handed back.

    >>> del model
    >>> release_freed_memory()
    """
    gc.collect()  # first free what only a reference cycle still holds
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False


# ---------------------------------------------------------------------------------------
# The machine's memory: RAM, and the cgroup limit of a container (Binder)
# ---------------------------------------------------------------------------------------

# Binder and containers cap memory through a cgroup, below what the machine has: v2, then v1.
CGROUP_MEMORY_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
# cgroup v1 writes "no limit" as about 2**63 bytes; no machine has an exbibyte of memory.
NO_LIMIT_BYTES = 2**60


def read_cgroup_limit(path: Path) -> int | None:
    """The memory limit in one cgroup file, in bytes.

    Returns:
        ``None`` when the file is missing or unreadable, says ``max`` (cgroup v2: no
        limit) or holds an absurdly large number (cgroup v1's way of saying no limit).
    """
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    if not text.isdigit():  # "max", or something this reader does not understand
        return None
    limit = int(text)
    return limit if 0 < limit < NO_LIMIT_BYTES else None


def cgroup_memory_limit(paths: Sequence[Path] = CGROUP_MEMORY_LIMIT_FILES) -> int | None:
    """The first memory limit found in ``paths`` (cgroup v2, then v1), in bytes, or ``None``."""
    for path in paths:
        limit = read_cgroup_limit(path)
        if limit is not None:
            return limit
    return None


def total_memory_bytes() -> int | None:
    """The machine's RAM in bytes, or ``None`` when it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # Linux, macOS
    except (AttributeError, OSError, ValueError):
        pass
    try:
        import psutil  # Windows: a Jupyter dependency, so usually there

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - unknown memory is reported as unknown, not as a crash
        return None


def memory_info() -> dict[str, float | None]:
    """The memory this process may use, in GiB.

    Returns:
        ``{"memory_total_gib": the machine's RAM, "memory_limit_gib": the cgroup limit
        where it is lower than the RAM (Binder, containers), else None}``; a value that
        cannot be read is ``None``.
    """
    total = total_memory_bytes()
    limit = cgroup_memory_limit()
    if limit is not None and total is not None and limit >= total:
        limit = None  # a limit above the RAM changes nothing
    return {
        "memory_total_gib": None if total is None else round(total / GIB, 2),
        "memory_limit_gib": None if limit is None else round(limit / GIB, 2),
    }


def available_memory_gib(environment: dict[str, object]) -> float | None:
    """The memory a notebook can have according to ``environment``: the cgroup limit, else the RAM."""
    values = [environment.get("memory_limit_gib"), environment.get("memory_total_gib")]
    known = [float(value) for value in values if isinstance(value, (int, float))]
    return min(known) if known else None


def describe_memory(environment: dict[str, object]) -> str:
    """One line for people, e.g. ``2.0 GiB (cgroup limit; 16.0 GiB RAM)``."""
    total, limit = environment.get("memory_total_gib"), environment.get("memory_limit_gib")
    ram = "unknown RAM" if total is None else f"{total} GiB RAM"
    return ram if limit is None else f"{limit} GiB (cgroup limit; {ram})"
