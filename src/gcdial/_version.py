"""gcdial's version, in a module of its own: the transport (its User-Agent), the CLI's
``--version`` and the package metadata (pyproject.toml) read it here, without importing the
package's features."""

__version__ = "0.1.0"
