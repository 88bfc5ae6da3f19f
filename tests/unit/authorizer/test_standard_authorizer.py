"""StandardAuthorizer with Kafka's semantics (StandardAuthorizerTest's cases, in our words)."""

from __future__ import annotations

import pytest

from suoi.authorizer import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    InvalidAcl,
    PatternType,
    ResourceType,
    StandardAuthorizer,
    authorizer_from_config,
)

Op, Perm, Pat, Res = AclOperation, AclPermissionType, PatternType, ResourceType
ALICE, BOB = "User:alice", "User:bob"


def acl(name: str, op: AclOperation, perm: AclPermissionType = Perm.ALLOW, *, principal: str = ALICE,
        host: str = "*", pattern: PatternType = Pat.LITERAL, rtype: ResourceType = Res.TOPIC) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def authorizer(*acls: AclBinding, supers: tuple[str, ...] = (), allow_everyone: bool = False) -> StandardAuthorizer:
    a = StandardAuthorizer(super_users=supers, allow_everyone_if_no_acl_found=allow_everyone)
    a.load(list(acls))
    return a


def test_literal_prefixed_and_wildcard_patterns() -> None:
    a = authorizer(acl("orders", Op.READ), acl("pay-", Op.WRITE, pattern=Pat.PREFIXED), acl("*", Op.DESCRIBE))
    assert a.authorize(ALICE, "h", Op.READ, Res.TOPIC, "orders")
    assert not a.authorize(ALICE, "h", Op.READ, Res.TOPIC, "orders2")  # literal is exact
    assert a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "pay-eu")
    assert not a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "pa")
    assert a.authorize(ALICE, "h", Op.DESCRIBE, Res.TOPIC, "anything")  # literal * covers every name
    assert not a.authorize(BOB, "h", Op.READ, Res.TOPIC, "orders")
    assert not a.authorize(ALICE, "h", Op.READ, Res.GROUP, "orders")  # resource type matters


def test_deny_beats_allow_and_covers_only_its_operation() -> None:
    a = authorizer(acl("orders", Op.ALL), acl("ord", Op.WRITE, Perm.DENY, pattern=Pat.PREFIXED))
    assert not a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "orders")
    assert a.authorize(ALICE, "h", Op.READ, Res.TOPIC, "orders")
    # a DENY of READ does not deny DESCRIBE (no implication for DENY), an ALLOW of READ implies it
    b = authorizer(acl("t", Op.READ, Perm.DENY), acl("t", Op.DESCRIBE))
    assert b.authorize(ALICE, "h", Op.DESCRIBE, Res.TOPIC, "t") and not b.authorize(ALICE, "h", Op.READ, Res.TOPIC, "t")
    c = authorizer(acl("t", Op.ALL), acl("t", Op.ALL, Perm.DENY, principal="User:*"))
    assert not c.authorize(ALICE, "h", Op.DESCRIBE, Res.TOPIC, "t")


@pytest.mark.parametrize("granted, asked, allowed", [
    (Op.READ, Op.DESCRIBE, True), (Op.WRITE, Op.DESCRIBE, True), (Op.DELETE, Op.DESCRIBE, True),
    (Op.ALTER, Op.DESCRIBE, True), (Op.CREATE, Op.DESCRIBE, False), (Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS, True),
    (Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, False), (Op.DESCRIBE, Op.READ, False), (Op.ALL, Op.CLUSTER_ACTION, True),
])
def test_implied_operations(granted: AclOperation, asked: AclOperation, allowed: bool) -> None:
    assert authorizer(acl("t", granted)).authorize(ALICE, "h", asked, Res.TOPIC, "t") is allowed


def test_principal_and_host_wildcards() -> None:
    a = authorizer(acl("t", Op.READ, principal="User:*", host="10.0.0.1"))
    assert a.authorize(BOB, "10.0.0.1", Op.READ, Res.TOPIC, "t")
    assert not a.authorize(BOB, "10.0.0.2", Op.READ, Res.TOPIC, "t")


def test_super_users_and_allow_everyone_if_no_acl_found() -> None:
    a = authorizer(acl("t", Op.READ, Perm.DENY, principal="User:*"), supers=("User:admin",))
    assert a.authorize("User:admin", "h", Op.READ, Res.TOPIC, "t")  # DENY does not bind super users
    assert not a.authorize(ALICE, "h", Op.READ, Res.TOPIC, "untouched")  # default: denied
    b = authorizer(acl("t", Op.READ, principal=BOB), allow_everyone=True)
    assert b.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "untouched")  # no ACL on the resource at all
    assert not b.authorize(ALICE, "h", Op.READ, Res.TOPIC, "t")  # some ACL exists there: not "no ACL found"
    assert b.authorize(ALICE, "h", Op.READ, Res.GROUP, "g")


def test_authorize_by_resource_type() -> None:
    a = authorizer(acl("t", Op.WRITE))
    assert a.authorize_by_resource_type(ALICE, "h", Op.WRITE, Res.TOPIC)
    assert not a.authorize_by_resource_type(BOB, "h", Op.WRITE, Res.TOPIC)
    b = authorizer(acl("t", Op.WRITE), acl("*", Op.WRITE, Perm.DENY))
    assert not b.authorize_by_resource_type(ALICE, "h", Op.WRITE, Res.TOPIC)
    c = authorizer(acl("tx", Op.WRITE, pattern=Pat.PREFIXED), acl("t", Op.WRITE, Perm.DENY, pattern=Pat.PREFIXED))
    assert not c.authorize_by_resource_type(ALICE, "h", Op.WRITE, Res.TOPIC)  # dominated by the DENY prefix


def test_load_reindexes_only_new_collections() -> None:
    acls = {1: acl("t", Op.READ)}
    a = StandardAuthorizer()
    a.load(acls)
    assert a.authorize(ALICE, "h", Op.READ, Res.TOPIC, "t")
    a.load({})
    assert not a.authorize(ALICE, "h", Op.READ, Res.TOPIC, "t")


def test_binding_validation_and_filters() -> None:
    with pytest.raises(InvalidAcl, match="principal"):
        acl("t", Op.READ, principal="alice").validate()
    with pytest.raises(InvalidAcl, match="patternType"):
        acl("t", Op.READ, pattern=Pat.MATCH).validate()
    with pytest.raises(InvalidAcl, match="operation"):
        acl("t", Op.ANY).validate()
    lit, pre, star = acl("orders", Op.READ), acl("ord", Op.READ, pattern=Pat.PREFIXED), acl("*", Op.READ)
    match = AclBindingFilter(Res.TOPIC, "orders", Pat.MATCH)
    assert [x for x in (lit, pre, star, acl("other", Op.READ)) if match.matches(x)] == [lit, pre, star]
    assert [x for x in (lit, pre) if AclBindingFilter(resource_name="ord").matches(x)] == [pre]
    assert AclBindingFilter(operation=Op.WRITE).matches(lit) is False
    assert AclBindingFilter(resource_type=Res.UNKNOWN).indefinite() is not None


def test_from_config() -> None:
    assert authorizer_from_config({}) is None
    a = authorizer_from_config({"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                                "super.users": "User:admin;User:ops", "allow.everyone.if.no.acl.found": "true"})
    assert a is not None and a.super_users == {"User:admin", "User:ops"} and a.allow_everyone_if_no_acl_found


def test_a_remembered_decision_follows_the_bindings() -> None:
    """Decisions are remembered per question, and forgotten when other bindings are loaded (the
    image's ACLs changed): an ALLOW removed, a DENY added, are seen by the very next question."""
    allow = [acl("orders", Op.WRITE)]
    a = authorizer(*allow)
    assert a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "orders")
    assert a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "orders")  # remembered
    assert not a.authorize(ALICE, "h2", Op.READ, Res.TOPIC, "orders")
    a.load(allow)  # the same collection: nothing changed
    assert a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "orders")
    a.load([])  # the ALLOW removed
    assert not a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "orders")
    a.load([acl("orders", Op.WRITE), acl("orders", Op.WRITE, Perm.DENY, host="h")])
    assert not a.authorize(ALICE, "h", Op.WRITE, Res.TOPIC, "orders")
    assert a.authorize(ALICE, "h3", Op.WRITE, Res.TOPIC, "orders")


def test_remembered_decisions_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import suoi.authorizer.standard as standard

    monkeypatch.setattr(standard, "DECISIONS_MAX", 3)
    a = authorizer(acl("t-", Op.READ, pattern=Pat.PREFIXED))
    for i in range(10):
        assert a.authorize(ALICE, "h", Op.READ, Res.TOPIC, f"t-{i}")
        assert not a.authorize(BOB, "h", Op.READ, Res.TOPIC, f"t-{i}")
        assert len(a._decisions) <= 3
