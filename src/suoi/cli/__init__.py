"""Command-line entry points (`suoi ...`)."""
