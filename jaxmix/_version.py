"""The library's version, read by the package metadata (pyproject.toml) and written into saved files."""

__version__ = "0.1.0"
