"""Coordinators: consumer groups (`group`) and producer ids / transactions (`txn`)."""
