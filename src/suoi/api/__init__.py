"""One handler per Kafka API: decode -> call `suoi.services` -> describe the response.

Handlers are registered with their api key and version range (`registry.api`); the
ApiVersions reply is derived from that registry, so what we advertise is exactly what
is implemented. Importing this package registers every handler.
"""

from suoi.api import (  # noqa: F401  (imported for registration)
    acls,
    allocate_producer_ids,
    alter_configs,
    alter_partition,
    alter_replica_log_dirs,
    api_versions,
    assign_replicas_to_dirs,
    broker_lifecycle,
    client_quotas,
    create_partitions,
    create_topics,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_log_dirs,
    describe_topic_partitions,
    elect_leaders,
    envelope,
    features,
    fetch,
    find_coordinator,
    group_admin,
    group_membership,
    incremental_alter_configs,
    init_producer_id,
    list_config_resources,
    list_offsets,
    metadata,
    offsets,
    offsets_for_leader_epoch,
    partition_reassignments,
    produce,
    raft_apis,
    sasl,
    scram_credentials,
    telemetry,
    transactions,
    transactions_admin,
)
from suoi.api.registry import REGISTRY, ApiSpec, RequestContext

__all__ = ["REGISTRY", "ApiSpec", "RequestContext"]
