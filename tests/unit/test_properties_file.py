"""`read_properties` reads what java.util.Properties.load reads (Kafka's Utils.loadProps), so
any server.properties or client config file written for Kafka means the same here."""

from __future__ import annotations

from pathlib import Path

import pytest

from suoi.config import read_properties


def props(tmp_path: Path, text: str | bytes) -> dict[str, str]:
    path = tmp_path / "x.properties"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return read_properties(path)


def test_the_three_separators_and_whitespace(tmp_path: Path) -> None:
    assert props(tmp_path, "a=1\nb: 2\nc 3\n  d  =  4\ne:5\nf\t6\ng =\nh\n") == {
        "a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "", "h": ""}


def test_comments_and_blank_lines(tmp_path: Path) -> None:
    assert props(tmp_path, "# a comment=1\n! also: a comment\n\n   \n  # indented\nkey=value # not a comment\n") == {
        "key": "value # not a comment"}


def test_escapes(tmp_path: Path) -> None:
    text = ("a\\=b=c\n"              # an escaped separator belongs to the key
            "key\\ with\\ spaces=v\n"
            "path=C:\\\\kafka\\\\data\n"
            "unicode=caf\\u00e9\n"
            "tab=a\\tb\n"
            "plain=\\q\n")            # an unknown escape is the character itself
    assert props(tmp_path, text) == {"a=b": "c", "key with spaces": "v", "path": "C:\\kafka\\data",
                                     "unicode": "café", "tab": "a\tb", "plain": "q"}


def test_line_continuations(tmp_path: Path) -> None:
    text = ("listeners=PLAINTEXT://127.0.0.1:9092,\\\n"
            "          CONTROLLER://127.0.0.1:9093\n"
            "two.backslashes=ends\\\\\n"   # an escaped backslash at the end does not continue
            "next=1\n")
    assert props(tmp_path, text) == {"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                                     "two.backslashes": "ends\\", "next": "1"}


def test_last_value_wins_and_values_are_trimmed_as_kafka_parses_them(tmp_path: Path) -> None:
    assert props(tmp_path, "k=1\nk=2   \n") == {"k": "2"}


@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
def test_utf8_or_javas_own_latin1(tmp_path: Path, encoding: str) -> None:
    assert props(tmp_path, "name=Zoë\n".encode(encoding)) == {"name": "Zoë"}
