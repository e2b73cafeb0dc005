"""Where a result was computed: device, library versions, the code's commit, the host and its CPU.

Everything that can move a number is named: the libraries that compute (jax, jaxlib, flax, optax, orbax) and
those that prepare the inputs or the scores (transformers, tokenizers, sentencepiece, datasets, numpy, scipy),
the CPU model and its instruction-set flags (XLA:CPU compiles for the host's features, so the same wheel
computes different floating-point sums on another CPU), and on a GPU the CUDA runtime, cuDNN and the driver.
jax is imported only by `environment()`: `commit()` serves `--version` without it.
"""
from __future__ import annotations

import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commit() -> str | None:
    """The checkout's commit (with "-dirty" when tracked files differ), else the image's build-time one."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if head and dirty:
            head += "-dirty"
    except (OSError, subprocess.SubprocessError):
        head = None
    # A Docker image has no .git: it records the commit it was built from at build time.
    return head or os.environ.get("XT_GIT_COMMIT") or None


# Distributions whose version can change a number this package prints (results.json `libraries`).
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "transformers", "tokenizers", "sentencepiece",
             "safetensors", "datasets", "numpy", "scipy")
# ... and on a GPU, the wheels that bring CUDA to jax, where installed (pip's CUDA; a system CUDA has none).
GPU_LIBRARIES = ("jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt",
                 "nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-nccl-cu12")
# The CPU flags that decide which vector instructions XLA:CPU emits (a short list for the report's table).
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "asimd", "sve")


def libraries(names=LIBRARIES) -> dict[str, str | None]:
    """{distribution: version, or None where it is not installed}."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu(cpuinfo: str | None = None) -> dict:
    """The host CPU: model, logical cores, all its flags and the vector ones among them (Linux /proc/cpuinfo;
    elsewhere the model from `platform` and no flags)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key not in fields:   # the first processor's entry (all cores of a host share these)
            fields[key] = value.strip()
    model = fields.get("model name") or fields.get("Model") or platform.processor() or None
    flags = sorted(set((fields.get("flags") or fields.get("Features") or "").split()))
    return {"model": model, "architecture": platform.machine(), "logical_cores": os.cpu_count(),
            "vector_flags": [f for f in VECTOR_FLAGS if f in flags], "flags": flags}


def gpu() -> dict:
    """CUDA runtime, cuDNN and driver versions as jax's CUDA plugin reports them, and the driver as
    nvidia-smi prints it; fields that cannot be read are None."""
    out: dict = {"cuda_runtime": None, "cudnn": None, "cuda_driver": None, "driver": None}
    try:   # jax's own record of the CUDA it loaded (a private module; absent on CPU-only jaxlib)
        from jax._src.lib import cuda_versions
    except ImportError:
        cuda_versions = None
    for key, fn in (("cuda_runtime", "cuda_runtime_get_version"), ("cudnn", "cudnn_get_version"),
                    ("cuda_driver", "cuda_driver_get_version")):
        try:
            out[key] = int(getattr(cuda_versions, fn)())
        except Exception:   # noqa: BLE001 - no plugin, no such function, or no device: unknown, not an error
            pass
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        out["driver"] = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 and smi.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        pass
    out["libraries"] = {k: v for k, v in libraries(GPU_LIBRARIES).items() if v is not None}
    return out


def environment() -> dict:
    import flax
    import jax

    dev = jax.devices()[0]
    return {"device": dev.platform, "device_kind": dev.device_kind, "device_count": jax.device_count(),
            "process_count": jax.process_count(), "jax": jax.__version__, "flax": flax.__version__,
            "python": platform.python_version(), "commit": commit(), "hostname": socket.gethostname(),
            "libraries": libraries(), "cpu": cpu(), "gpu": gpu() if dev.platform == "gpu" else None}
