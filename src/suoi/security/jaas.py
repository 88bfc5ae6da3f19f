"""The JAAS configuration strings Kafka reads from ``sasl.jaas.config``.

``org.apache.kafka.common.security.plain.PlainLoginModule required username="admin"
password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";`` -- one login
module, a control flag, ``key=value`` options (quoted or bare), a terminating ``;``. A broker's
PLAIN users are the ``user_<name>`` options (Kafka's PlainServerCallbackHandler); ``username``
and ``password`` are what the node itself sends when it connects to other nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["JaasConfig", "JaasError", "parse_jaas"]

_HEAD = re.compile(r"\s*([\w.$]+)\s+(required|requisite|sufficient|optional)\s*", re.I)
_OPTION = re.compile(r'([\w.\-]+)\s*=\s*(?:"((?:\\.|[^"\\])*)"|([^\s;"]+))\s*')


class JaasError(ValueError):
    """A ``sasl.jaas.config`` that does not parse (the message never includes the value)."""


@dataclass(frozen=True, slots=True)
class JaasConfig:
    login_module: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def users(self) -> dict[str, str]:
        """PLAIN users (``user_<name>="<password>"``)."""
        return {k[5:]: v for k, v in self.options.items() if k.startswith("user_")}

    def __repr__(self) -> str:  # never show passwords
        return f"JaasConfig({self.login_module}, options={sorted(self.options)})"


def parse_jaas(text: str, key: str = "sasl.jaas.config") -> JaasConfig:
    m = _HEAD.match(text)
    if m is None:
        raise JaasError(f"{key}: expected '<LoginModule class> required key=\"value\" ... ;'")
    pos = m.end()
    options: dict[str, str] = {}
    while pos < len(text) and text[pos] != ";":
        o = _OPTION.match(text, pos)
        if o is None:
            raise JaasError(f"{key}: cannot parse the options of {m.group(1)} (expected key=\"value\" pairs)")
        value = o.group(2) if o.group(2) is not None else o.group(3)
        options[o.group(1)] = re.sub(r"\\(.)", r"\1", value)
        pos = o.end()
    if pos >= len(text) or text[pos:].strip() != ";":
        raise JaasError(f"{key}: one login module terminated by ';' expected")
    return JaasConfig(m.group(1), options)
