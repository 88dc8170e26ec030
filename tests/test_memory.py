"""ldl.core.memory.release_freed_memory: freed memory goes back to the system, not only to the allocator."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In a fresh interpreter: 400 blocks of 100 KiB (below glibc's mmap threshold, so they come
# from the heap), all freed but the last, which pins the top of the heap so free() alone
# cannot shrink it. The process then still holds ~40 MiB it does not use.
HELD_AFTER_FREE = """
import sys
from ldl.core.memory import release_freed_memory

def anonymous_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

blocks = [bytearray(100 * 1024) for _ in range(400)]
pin = blocks[-1]
del blocks
before = anonymous_mib()
released = release_freed_memory()
after = anonymous_mib()
print(released, before, after)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's, on Linux")
def test_freed_heap_memory_is_handed_back() -> None:
    out = subprocess.run([sys.executable, "-c", HELD_AFTER_FREE], capture_output=True, text=True, check=True)
    released, before, after = out.stdout.split()
    assert released == "True"
    assert float(before) - float(after) >= 20, out.stdout  # most of the ~40 MiB comes back
