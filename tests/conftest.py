"""Test-wide settings: no network, CPU JAX, deterministic float32 matmuls."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Reports draw their figures in this process (xdist's workers already fill the cores; a report's own worker
# processes would only add their start-up); tests/repro/test_plots.py checks the workers against one process.
os.environ.setdefault("XT_PLOT_WORKERS", "1")
# and save them as PNG only, what report.md shows (PDF and SVG are half the figures' time, and reports are built by
# dozens of tests); tests/repro/test_plots.py and test_report.py's figures test write all three formats.
os.environ.setdefault("XT_PLOT_FORMATS", "png")

# Under pytest-xdist (README's and CI's `-n 2`), XLA:CPU compiles with LLVM's optimisation off: the same HLO
# and XLA passes, machine code 2-3x quicker to build and slower to run, which suits the suite's tiny models
# (measured: a compile-heavy subset 265 -> 183 s). The CLI subprocesses inherit it (tests/support/cli.env).
# Timing runs never use xdist (pytest-benchmark turns itself off under it), so benchmarks keep XLA's default;
# XT_TEST_XLA_OPT=1 keeps it here too.
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("XT_TEST_XLA_OPT") != "1":
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

# The host heap policy a training process runs with (repro.training.host_memory): set before jax's first
# computation, so that what the tests and benchmarks time is what `python -m repro` runs.
from repro.training import host_memory  # noqa: E402

host_memory.retain_freed_memory()

import jax  # noqa: E402

# Parity checks compare against float32 PyTorch: keep XLA from using lower-precision matmul passes.
jax.config.update("jax_default_matmul_precision", "highest")

# The tests' own XLA compilations go to the compilation cache the CLI subprocesses share (tests/support/cli.py's
# JAX_CACHE), as `python -m repro` does with compilation_cache_dir: a tiny model's train step takes 5-20 s to
# compile on 2 cores, and many tests compile the same one.
from tests.support.cli import JAX_CACHE  # noqa: E402

jax.config.update("jax_compilation_cache_dir", JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


# ---- slow tests: opt-in ------------------------------------------------------------------------------
# `@pytest.mark.slow` marks a test that takes more than ~30 s on a 2-core CPU (end-to-end grids, real
# weights on real data, multi-process runs). README's test command skips them so that CI stays well under
# its 20 minutes; `./run_tests.sh --run-slow` (or XT_SLOW_TESTS=1) runs them too.
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=os.environ.get("XT_SLOW_TESTS") == "1",
                     help="also run the tests marked slow (also XT_SLOW_TESTS=1)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow (>30 s on 2 cores): run with ./run_tests.sh --run-slow or XT_SLOW_TESTS=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
