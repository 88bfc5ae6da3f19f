"""ACL bindings and client quotas in the metadata log: controller decisions, replay, snapshots."""

from __future__ import annotations

from suoi.authorizer import AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType
from suoi.controller.client_quotas import QuotaAlteration
from suoi.controller.image import MetadataImage
from suoi.controller.records import AccessControlEntry, ClientQuota, RemoveAccessControlEntry
from suoi.model import ErrorCode

from .helpers import Harness

READ_T = AclBinding(ResourceType.TOPIC, "t", PatternType.LITERAL, "User:a", "*", AclOperation.READ,
                    AclPermissionType.ALLOW)
WRITE_P = AclBinding(ResourceType.TOPIC, "p-", PatternType.PREFIXED, "User:a", "*", AclOperation.WRITE,
                     AclPermissionType.DENY)


def test_create_delete_acls_replay_and_snapshot() -> None:
    h = Harness()
    bad = AclBinding(ResourceType.ANY, "t", PatternType.LITERAL, "User:a", "*", AclOperation.READ,
                     AclPermissionType.ALLOW)
    created = h.ctl.create_acls([READ_T, bad, WRITE_P])
    assert [r.error for r in created.response] == [ErrorCode.none, ErrorCode.invalid_request, ErrorCode.none]
    assert [type(r) for r in created.records] == [AccessControlEntry, AccessControlEntry]
    assert h.ctl.create_acls([READ_T]).records == ()  # exists already: success, no record
    image = h.replayed()
    assert sorted(image.acls.values(), key=str) == sorted([READ_T, WRITE_P], key=str)
    assert MetadataImage.from_snapshot(image.to_snapshot()).acls == image.acls

    deleted = h.ctl.delete_acls([AclBindingFilter(resource_type=ResourceType.TOPIC, pattern_type=PatternType.MATCH,
                                                  resource_name="p-x"),
                                 AclBindingFilter(operation=AclOperation.UNKNOWN)])
    assert deleted.response[0].deleted == (WRITE_P,) and deleted.response[1].error == ErrorCode.invalid_request
    assert [type(r) for r in deleted.records] == [RemoveAccessControlEntry]
    assert list(h.replayed().acls.values()) == [READ_T]


def test_client_quotas_set_remove_and_refusals() -> None:
    h = Harness()
    user_client = (("client-id", "app"), ("user", "alice"))  # any order: stored user first
    result = h.ctl.alter_client_quotas([
        QuotaAlteration(user_client, (("producer_byte_rate", 1024.0), ("request_percentage", 50.5))),
        QuotaAlteration((("user", None),), (("consumer_byte_rate", 1.5),)),  # bytes are whole numbers
        QuotaAlteration((("ip", "1.2.3.4"), ("user", "a")), (("connection_creation_rate", 5.0),)),
        QuotaAlteration((("user", "bob"),), (("controller_mutation_rate", -5.0),)),
        QuotaAlteration((("user", "bob"),), (("no_such_key", 5.0),)),
    ])
    assert [e for e, _ in result.response] == [ErrorCode.none] + [ErrorCode.invalid_request] * 4
    entity = (("user", "alice"), ("client-id", "app"))
    assert dict(h.replayed().client_quotas) == {tuple(sorted(entity)): {"producer_byte_rate": 1024.0,
                                                                         "request_percentage": 50.5}}
    # KIP-599's controller mutation rate (partitions per second, a fraction allowed)
    assert h.ctl.alter_client_quotas([QuotaAlteration((("user", "bob"),), (("controller_mutation_rate", 0.5),))]
                                     ).response == [(ErrorCode.none, None)]
    assert h.replayed().client_quotas[(("user", "bob"),)] == {"controller_mutation_rate": 0.5}
    h.ctl.alter_client_quotas([QuotaAlteration((("user", "bob"),), (("controller_mutation_rate", None),))])
    # KIP-612: an ip entity (named or default) takes connection_creation_rate only, in whole connections
    ip = h.ctl.alter_client_quotas([
        QuotaAlteration((("ip", "1.2.3.4"),), (("connection_creation_rate", 5.0),)),
        QuotaAlteration((("ip", None),), (("connection_creation_rate", 100.0),)),
        QuotaAlteration((("ip", "not-an-ip"),), (("connection_creation_rate", 5.0),)),
        QuotaAlteration((("ip", "1.2.3.5"),), (("producer_byte_rate", 5.0),)),
        QuotaAlteration((("user", "a"),), (("connection_creation_rate", 5.0),)),
        QuotaAlteration((("ip", "1.2.3.6"),), (("connection_creation_rate", 1.5),)),
    ])
    assert [e for e, _ in ip.response] == [ErrorCode.none] * 2 + [ErrorCode.invalid_request] * 4
    assert h.replayed().client_quotas[(("ip", "1.2.3.4"),)] == {"connection_creation_rate": 5.0}
    h.ctl.alter_client_quotas([QuotaAlteration((("ip", "1.2.3.4"),), (("connection_creation_rate", None),)),
                               QuotaAlteration((("ip", None),), (("connection_creation_rate", None),))])
    assert h.ctl.alter_client_quotas([QuotaAlteration(entity, (("producer_byte_rate", 1.0),))],
                                     validate_only=True).records == ()
    removed = h.ctl.alter_client_quotas([QuotaAlteration(entity, (("producer_byte_rate", None),
                                                                  ("request_percentage", None)))])
    assert all(isinstance(r, ClientQuota) and r.quota_value is None for r in removed.records)
    image = h.replayed()
    assert dict(image.client_quotas) == {}
    assert MetadataImage.from_snapshot(image.to_snapshot()).client_quotas == image.client_quotas
