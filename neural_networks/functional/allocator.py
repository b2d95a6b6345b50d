"""Keep freed array memory in the process between training steps (glibc only).

Every step allocates and frees the same large temporaries (activations, padded inputs,
gradients; a few MB to tens of MB each). With glibc's defaults, blocks above a dynamic
threshold are ``mmap``-ed and returned to the kernel on free, and the heap's top is trimmed
back; the next step then page-faults the same memory in again, zero-filled by the kernel, which
costs a convolution layer a noticeable share of its time (benchmarks/RESULTS.md, "Kernel figures
moved from code comments").

:func:`retain_freed_memory` raises glibc's ``mmap`` and trim thresholds with ``mallopt`` so that
freed blocks stay in the heap and are reused: what PyTorch's caching allocators do for their
tensors. The resident size then stays at the high-water mark of the run instead of dropping
between steps. The training loop (:func:`neural_networks.training.fit`) and the command line apply
it once, when they first run, unless the environment variable ``NEURAL_NETWORKS_MALLOC`` is
``system``; importing the package does not. glibc offers no way to read the thresholds back, so
it stays on for the rest of the process (it only changes when memory is returned to the OS, not
what a program computes). On other C libraries (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["retain_freed_memory", "apply_default", "is_applied", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 256 * 2**20  #: Blocks up to this size come from the (reused) heap
TRIM_THRESHOLD = 1024 * 2**20  #: Free memory kept at the heap's top before returning any


def retain_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Ask glibc to serve blocks up to ``mmap_threshold`` bytes from the heap and to keep up to
    ``trim_threshold`` bytes of freed memory. Returns whether both settings were accepted
    (``False`` without glibc). Safe to call more than once."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
    )


_applied = False


def apply_default() -> bool:
    """:func:`retain_freed_memory` once per process (what training and the CLI call), unless
    ``NEURAL_NETWORKS_MALLOC=system``. Returns whether the thresholds are raised."""
    global _applied
    if not _applied and os.environ.get("NEURAL_NETWORKS_MALLOC", "").strip().lower() != "system":
        _applied = retain_freed_memory()
    return _applied


def is_applied() -> bool:
    """Whether :func:`apply_default` has raised the thresholds in this process."""
    return _applied
