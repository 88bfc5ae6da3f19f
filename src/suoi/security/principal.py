"""Kafka principals from TLS client certificates: ``ssl.principal.mapping.rules``.

Kafka names an mTLS client ``User:<DN>`` where DN is the certificate subject in RFC 2253 form
(``CN=alice,OU=eng,O=Example``, most specific first, as Java's X500Principal prints it), unless
a mapping rule rewrites it. Rules (Kafka's SslPrincipalMapper): a comma-separated list of
``DEFAULT`` (the DN as is) and ``RULE:pattern/replacement/[L|U]``; the first rule whose pattern
matches the *whole* DN wins, ``$1``.. in the replacement are its groups, ``L``/``U`` lower/upper
case the result. A DN no rule matches is refused (Kafka: "No rules apply to DN").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ANONYMOUS", "PrincipalMappingError", "SslPrincipalMapper", "certificate_dn"]

#: Kafka's principal for a connection that did not authenticate (PLAINTEXT, TLS without a client cert).
ANONYMOUS = "User:ANONYMOUS"

# Kafka's rule grammar: pattern and replacement are runs of escaped characters or anything but
# '/' and '\'; an optional L or U; rules separated by commas (a pattern may contain commas).
_RULE = re.compile(r"\s*(?:RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?)|(DEFAULT))\s*(?:,|$)")
_GROUP_REF = re.compile(r"\$(\d)")


class PrincipalMappingError(ValueError):
    """Bad ``ssl.principal.mapping.rules``, or a DN no rule applies to."""


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str = ""
    case: str = ""

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        m = self.pattern.fullmatch(dn)
        if m is None:
            return None
        out = _GROUP_REF.sub(lambda g: m.group(int(g.group(1))) or "", self.replacement)
        return out.lower() if self.case == "L" else out.upper() if self.case == "U" else out


class SslPrincipalMapper:
    def __init__(self, rules: str | None) -> None:
        self.rules = _parse(rules or "DEFAULT")

    def principal(self, dn: str) -> str:
        """``User:<name>`` for a certificate subject DN."""
        for rule in self.rules:
            name = rule.apply(dn)
            if name is not None:
                return f"User:{name}"
        rules = [r.pattern.pattern if r.pattern else "DEFAULT" for r in self.rules]
        raise PrincipalMappingError(f"No rules apply to {dn}, rules {rules}")


def _parse(text: str) -> list[_Rule]:
    rules: list[_Rule] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _RULE.match(text, pos)
        if m is None or m.end() == pos:
            raise PrincipalMappingError(f"ssl.principal.mapping.rules: invalid rule at {text[pos:]!r}")
        pos = m.end()
        if m.group(4):
            rules.append(_Rule(None))
            continue
        try:
            pattern = re.compile(m.group(1).replace("\\/", "/"))
        except re.error as exc:
            raise PrincipalMappingError(f"ssl.principal.mapping.rules: bad pattern {m.group(1)!r}: {exc}") from None
        rules.append(_Rule(pattern, m.group(2).replace("\\/", "/"), m.group(3)))
    return rules


def certificate_dn(der: bytes) -> str:
    """The subject of a DER certificate as RFC 2253 text (Java's X500Principal.getName())."""
    from cryptography import x509

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()
