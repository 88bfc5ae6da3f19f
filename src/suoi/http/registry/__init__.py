"""A schema registry speaking Confluent Schema Registry's REST API v1 (see README.md)."""

from suoi.http.registry.server import SchemaRegistryServer

__all__ = ["SchemaRegistryServer"]
