"""The one-line failure of every tool, at the bottom of `suoi.cli`: `common` (which reports it)
and the helpers `common` uses (`client_props`) both raise it, so it lives below both."""

from __future__ import annotations


class CliError(Exception):
    """A failure reported as one line (exit code 1)."""
