"""TLS and SASL for suoi's listeners and its own client, with Kafka's settings (issue 14).

A leaf package (it imports only ``suoi.config_security``/``configdefs``): ``tls`` builds
``ssl`` contexts from ``ssl.*`` (PEM/PKCS12 keystores and truststores), ``principal`` maps
client certificate DNs to principals (``ssl.principal.mapping.rules``), ``jaas`` reads
``sasl.jaas.config``, ``scram`` and ``sasl`` are the sans-IO mechanisms (PLAIN,
SCRAM-SHA-256/512), ``listeners`` resolves per-listener settings into ``ListenerSecurity``
(server side) and ``ClientSecurity`` (suoi's inter-node client). See README.md.
"""

from suoi.security.client import PLAINTEXT, ClientSecurity
from suoi.security.listeners import ListenerSecurity, SecurityConfigError, listener_security

__all__ = ["PLAINTEXT", "ClientSecurity", "ListenerSecurity", "SecurityConfigError", "listener_security"]
