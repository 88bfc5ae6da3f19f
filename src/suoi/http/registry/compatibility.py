"""Compatibility levels on top of each format's one question, "can reader read writer's data?".

BACKWARD: the new schema reads data written with the latest one (consumers upgrade first);
FORWARD: the latest reads data written with the new one (producers upgrade first); FULL: both.
The _TRANSITIVE levels ask it of every earlier live version, not only the latest. NONE: no check.
Pure: the registry passes the live versions' parsed schemas, oldest first.
"""

from __future__ import annotations

from suoi.http.registry.formats import ParsedSchema

__all__ = ["LEVELS", "check"]

LEVELS = ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE")


def check(level: str, new: ParsedSchema, existing: list[tuple[int, ParsedSchema]]) -> list[str]:
    """Messages saying why ``new`` breaks ``level`` against ``existing`` ((version, schema), oldest
    first); [] if it does not. Like Confluent's, it stops at the first version it breaks."""
    if level == "NONE" or not existing:
        return []
    against = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    base = level.removesuffix("_TRANSITIVE")
    errors: list[str] = []
    for version, old in reversed(against):
        if base in ("BACKWARD", "FULL"):
            errors += new.compatibility_errors(old)
        if base in ("FORWARD", "FULL"):
            errors += old.compatibility_errors(new)
        if errors:
            errors.append(f"{{oldSchemaVersion: {version}, oldSchema: '{old.text}', "
                          f"compatibility: '{level}'}}")
            break
    return errors
