"""The allocator setting that keeps a worker's memory flat (see ``app.memory``)."""

from __future__ import annotations

import platform

import pytest

from app.memory import MMAP_THRESHOLD_BYTES, fix_mmap_threshold


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_glibc_accepts_the_fixed_mmap_threshold() -> None:
    assert fix_mmap_threshold(MMAP_THRESHOLD_BYTES)
    assert fix_mmap_threshold(MMAP_THRESHOLD_BYTES)  # idempotent
