"""Shared test configuration.

Tight comparisons against scikit-learn and scipy run in float64 through the
``x64`` fixture (``jax.enable_x64`` as a context, so float32 tests elsewhere
keep JAX's default). Hypothesis runs a modest number of examples without
deadlines, since the first call of each shape compiles.

The tests compile far more than they compute, so they keep their programs in
JAX's persistent compilation cache (``jaxmix.enable_compilation_cache``, in
the folder JAXMIX_TEST_COMPILATION_CACHE names, else jaxmix's default; "none"
turns it off): a second run loads them instead of compiling, and a module
reloads the programs an earlier one compiled.
"""

import os

# Compile for the test run, which compiles far more than it computes: XLA's CPU backend without its
# MLIR fusion emitters and with LLVM's cheapest optimization compiles about 40 % faster, the programs'
# arithmetic unchanged (benchmarks/README.md, "The test command"). Set before JAX starts its backend.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=0"]
).strip()

import jax
import pytest
from hypothesis import settings
from references import release_memory

import jaxmix

settings.register_profile("jaxmix", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("jaxmix")
if os.environ.get("JAXMIX_TEST_COMPILATION_CACHE") != "none":
    jaxmix.enable_compilation_cache(os.environ.get("JAXMIX_TEST_COMPILATION_CACHE"))


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """Drop JAX's compiled programs after each test module, and hand the freed memory back to the system.

    XLA's CPU backend maps memory for every executable it keeps (about three mappings each); one
    process running the whole suite otherwise reaches the kernel's limit of 65,530 mappings
    (``vm.max_map_count``), and compilation then crashes the process. glibc's allocator keeps what
    the compiler freed unless asked (``malloc_trim``): without it a test process grows through the
    suite (about 0.9 GB after six modules instead of 0.36 GB).
    """
    yield
    release_memory()


@pytest.fixture(autouse=True)
def bound_memory():
    """After a test that leaves this process above ``MEMORY_LIMIT_MB`` resident, drop the compiled
    programs then (not only at the module's end): a module of many shapes (the spectral tests, the
    estimator checks) otherwise holds well over a gigabyte of them by its end."""
    yield
    if _resident_mb() > MEMORY_LIMIT_MB:
        release_memory()


MEMORY_LIMIT_MB = 900


def _resident_mb() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    except OSError:  # not Linux
        return 0


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX arrays."""
    with jax.enable_x64(True):
        yield
