"""Hand back the resident pages of weights that are read straight from the model file.

A converted model's tensors point into the memory-mapped ``model.safetensors``
(``fastload``): a page becomes resident when first read and then counts in
the process's memory for good, although the kernel can read it back from the
file (usually from its page cache) at any time. The enrollment-only modules
(conditioning encoder, perceiver, speaker encoder: ~207 MB in fp32 for
XTTS-v2) are read once per enrollment and not at all while rendering; after an
enrollment their pages are dropped with ``madvise(MADV_DONTNEED)``, which for
a private, unmodified file mapping means "read it from the file again when
touched" — never a change of contents. Only pages wholly inside a mapping of
that very file are touched: a tensor that was copied to ordinary memory (an
anonymous mapping, where DONTNEED would zero it) is left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterable
from pathlib import Path

import torch

MADV_DONTNEED = 4
PAGE = 4096


def file_mappings(path: Path, maps: str | None = None) -> list[tuple[int, int]]:
    """(start, end) of every mapping of ``path`` in this process (``/proc/self/maps``)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return []
    target = str(path.resolve())
    out = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target:
            start, end = (int(value, 16) for value in fields[0].split("-"))
            out.append((start, end))
    return out


def inside(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(start <= lo and hi <= end for start, end in ranges)


def file_page_spans(tensors: Iterable[torch.Tensor], ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Whole pages of each tensor's storage that lie inside one of ``ranges``."""
    spans = []
    for tensor in tensors:
        storage = tensor.untyped_storage()
        start, size = storage.data_ptr(), storage.nbytes()
        lo, hi = -(-start // PAGE) * PAGE, (start + size) // PAGE * PAGE
        if hi > lo and tensor.device.type == "cpu" and inside(ranges, lo, hi):
            spans.append((lo, hi))
    return spans


def release_file_pages(modules: Iterable[torch.nn.Module], path: Path) -> int:
    """Drop the resident pages of ``modules``' tensors that are mapped from ``path``; the bytes released."""
    ranges = file_mappings(path)
    tensors = [t for module in modules for t in (*module.parameters(), *module.buffers())]
    spans = file_page_spans(tensors, ranges) if ranges else []
    released = 0
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for lo, hi in spans:
            if libc.madvise(lo, hi - lo, MADV_DONTNEED) == 0:
                released += hi - lo
    return released
