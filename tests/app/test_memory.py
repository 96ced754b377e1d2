"""The allocator setting that keeps a worker's memory flat (see ``app.memory``)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Allocate, touch and free an 8 MiB block three times; print the KiB still resident.
# By default glibc raises its mmap threshold after the first free, so the later blocks come
# from the heap and their pages stay with the process.
PROBE = """
import ctypes, sys
from app.memory import fix_mmap_threshold
if sys.argv[1] == "fix":
    assert fix_mmap_threshold()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss_kib():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])
size = 8 << 20
before = rss_kib()
for _ in range(3):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
print(rss_kib() - before)
"""


def _retained_kib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=REPO, capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt and its mmap threshold are glibc's",
)
def test_freed_large_blocks_go_back_to_the_os_with_the_fixed_threshold() -> None:
    assert _retained_kib("default") >= 4 * 1024  # the behaviour the fix exists for
    assert _retained_kib("fix") < 1024
