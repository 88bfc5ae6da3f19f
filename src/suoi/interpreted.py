"""`interpreted`: keep a class an ordinary Python class in the opt-in mypyc build (setup.py).

mypyc compiles every class of a module it compiles to a native class (a C struct with fixed
slots) unless something marks it otherwise, and any class decorator it does not know does.
A native class must not inherit from an interpreted class that has a ``__dict__`` or takes weak
references: its C layout would overlap the base's (the compiled `KafkaConnection` on the
interpreted `ConnectionAdmission` crashed the node when `api.telemetry` took a weak reference
to a connection). In the default, pure Python build this decorator does nothing at all.
"""

from __future__ import annotations

from typing import TypeVar

_C = TypeVar("_C", bound=type)


def interpreted(cls: _C) -> _C:
    """The class itself, unchanged (see the module doc: only mypyc reads the decoration)."""
    return cls
