"""Apache Kafka's broker and topic config table (Kafka 4.0) and its parsing rules.

A leaf package (imports nothing from suoi): the broker's startup config, the log layer's
topic configs, dynamic broker configs and DescribeConfigs all read the same facts, so a
config Kafka knows is accepted and described everywhere, with Kafka's types, defaults and
error wording, and one that suoi ignores is documented as such.
"""

from suoi.configdefs.defs import (
    BROKER_CONFIGS,
    CONFIG_TYPE_IDS,
    IMPLEMENTED_SECURITY,
    LIST_CONFIGS,
    RECONFIGURABLE_SSL,
    TOPIC_CONFIGS,
    ConfigDef,
    ConfigValueError,
    dynamic_ssl_key,
    is_listener_security_key,
    unimplemented_security_feature,
)
from suoi.configdefs.synonyms import broker_config_synonyms, topic_config_synonyms

__all__ = [
    "BROKER_CONFIGS",
    "CONFIG_TYPE_IDS",
    "TOPIC_CONFIGS",
    "ConfigDef",
    "ConfigValueError",
    "IMPLEMENTED_SECURITY",
    "LIST_CONFIGS",
    "RECONFIGURABLE_SSL",
    "dynamic_ssl_key",
    "is_listener_security_key",
    "broker_config_synonyms",
    "topic_config_synonyms",
    "unimplemented_security_feature",
]
