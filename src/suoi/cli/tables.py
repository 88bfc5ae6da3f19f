"""Kafka's plain text tables (`ToolsUtils.prettyPrintTable`, used by kafka-metadata-quorum.sh and
kafka-transactions.sh): every cell padded to its column's width and followed by a tab, so
scripts written against Kafka's output split suoi's the same way."""

from __future__ import annotations

from collections.abc import Sequence


def kafka_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The table as Kafka prints it, one line per row (header first), no trailing newline."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    return "\n".join("".join(f"{cell.ljust(w)}\t" for cell, w in zip(row, widths, strict=True))
                     for row in [list(headers), *cells])


def print_kafka_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(kafka_table(headers, rows))


def split_kafka_table(text: str) -> list[list[str]]:
    """The cells of a table printed by `kafka_table` (for tests and scripts)."""
    return [[cell.strip() for cell in line.rstrip("\t").split("\t")] for line in text.splitlines() if line.strip()]
