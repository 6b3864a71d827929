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

import jax
import pytest
from hypothesis import settings

import jaxmix

settings.register_profile("jaxmix", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("jaxmix")
if os.environ.get("JAXMIX_TEST_COMPILATION_CACHE") != "none":
    jaxmix.enable_compilation_cache(os.environ.get("JAXMIX_TEST_COMPILATION_CACHE"))


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    XLA's CPU backend maps memory for every executable it keeps (about three mappings each); one
    process running the whole suite otherwise reaches the kernel's limit of 65,530 mappings
    (``vm.max_map_count``), and compilation then crashes the process.
    """
    yield
    jax.clear_caches()


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX arrays."""
    with jax.enable_x64(True):
        yield
