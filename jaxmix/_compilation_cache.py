"""``enable_compilation_cache``: JAX's persistent compilation cache, opt-in by one call."""

from __future__ import annotations

import os

import jax
from jax.experimental.compilation_cache import compilation_cache


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/jaxmix/compilation`` (``~/.cache/jaxmix/compilation`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxmix", "compilation")


def enable_compilation_cache(path=None) -> str:
    """Keep every program JAX compiles in a folder on disk, so that later processes load it instead of
    compiling it again; returns the folder.

    ``path`` defaults to ``default_cache_dir()``: ``$XDG_CACHE_HOME/jaxmix/compilation``, or
    ``~/.cache/jaxmix/compilation``. Every program is kept, however fast it compiled (JAX's default
    keeps only those that took a second or more; most of the library's take less). The library never
    calls this by itself; ``jaxmix demo`` and the benchmarks do. Call it before the first fit: programs
    compiled before it are not written. Like JAX's own cache, the folder is trusted: whoever can write
    to it can make this process run code, so do not share it with users you do not trust.
    """
    path = os.path.abspath(os.fspath(default_cache_dir() if path is None else path))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.set_cache_dir(path)
    compilation_cache.reset_cache()  # the next compilation opens the cache in ``path``
    return path
