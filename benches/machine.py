"""What the benchmark ran on: CPU, SIMD width, libraries, thread pools and numpy's GEMM peak.

``describe`` records the CPU model and SIMD width (from /proc/cpuinfo), the versions of the
contenders' libraries, and what threadpoolctl reports for every BLAS / OpenMP library loaded
(numpy's OpenBLAS, PyTorch's OpenMP, mlpfast's own pool): its API, version, the kernel
OpenBLAS picked ("architecture": SkylakeX is its AVX-512 kernel, Haswell its AVX2 one) and
its thread count. ``gemm_peak`` is the machine's limit as numpy sees it: the best of several
4096³ matrix products.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

import numpy as np
from timing import timed

import mlpfast


def cpuinfo_field(name: str) -> str | None:
    """The first value of ``name`` in /proc/cpuinfo, or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    return cpuinfo_field("model name") or platform.processor() or "unknown"


def simd_width() -> str:
    """The widest vector instructions the CPU has: AVX-512, AVX2 or neither."""
    flags = set((cpuinfo_field("flags") or "").split())
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return "below AVX2" if flags else "unknown"


def package_of(filepath: str) -> str:
    """The package a shared library ships with: numpy for …/numpy.libs/libscipy_openblas….so,
    torch for …/torch/lib/libgomp.so.1, mlpfast for …/mlpfast/_core.abi3.so."""
    for folder in reversed(Path(filepath).parts[:-1]):
        if folder not in ("lib", "lib64", ".libs"):
            return folder[: -len(".libs")] if folder.endswith(".libs") else folder
    return "-"


def threadpools() -> list[dict]:
    """threadpoolctl's view of every native thread pool loaded in this process."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "version", "architecture", "threading_layer")
    return [
        {
            "package": package_of(info["filepath"]),
            "library": Path(info["filepath"]).name,
            "filepath": info["filepath"],
            **{k: info.get(k) for k in keys},
            "num_threads": info["num_threads"],
        }
        for info in threadpool_info()
    ]


def numpy_blas() -> str | None:
    """numpy's BLAS and the kernel it runs, e.g. "OpenBLAS SkylakeX" (None when unknown)."""
    for pool in threadpools():
        if pool["user_api"] == "blas" and pool["package"] == "numpy":
            name = "OpenBLAS" if pool["internal_api"] == "openblas" else pool["internal_api"]
            return f"{name} {pool.get('architecture') or ''}".strip()
    return None


def torch_blas(torch) -> str | None:
    """The BLAS PyTorch was built with (its build settings' BLAS_INFO, e.g. mkl): linked into
    its own library, so threadpoolctl does not list it."""
    match = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return match.group(1) if match else None


def library_versions(use: dict[str, bool]) -> dict:
    """Versions of the contenders' libraries (importing them, so that threadpoolctl sees the
    thread pools they load); PyTorch gets mlpfast's thread count."""
    out = {
        "numpy": np.__version__,
        "python": platform.python_version(),
        "mlpfast": mlpfast.__version__,
    }
    if use["sklearn"]:
        import sklearn

        out["sklearn"] = sklearn.__version__
    if use["torch"]:
        import torch

        torch.set_num_threads(mlpfast.get_num_threads())
        out.update(
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
            torch_blas=torch_blas(torch),
        )
    if use["jax"]:
        import jax

        out["jax"] = jax.__version__
    if use["onnx"]:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    return out


def describe(use: dict[str, bool], blas_environment: dict) -> dict:
    """The machine and software of this run (everything but the GEMM peak);
    ``blas_environment`` says which OpenBLAS settings run.py removed (and which are set)."""
    versions = library_versions(use)
    np.ones((64, 64)) @ np.ones((64, 64))  # OpenBLAS is loaded, whatever numpy loads lazily
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "simd": simd_width(),
        "threads": mlpfast.get_num_threads(),
        **versions,
        "blas_environment": blas_environment,
        "threadpools": threadpools(),
    }


def gemm_peak(dtype, n: int = 4096, runs: int = 5) -> dict:
    """numpy's GFLOP/s on an n³ matrix product: every run, and the best (the peak)."""
    a = np.ones((n, n), dtype)
    b = np.ones((n, n), dtype)
    a @ b  # the first product pays for page faults and thread start-up
    rates = [2 * n**3 / timed(lambda: a @ b) / 1e9 for _ in range(runs)]
    return {"gflops": max(rates), "all_gflops": rates, "n": n}
