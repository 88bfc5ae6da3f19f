"""Every API the node serves says what it is authorized for (api/authorization.py's table), and
the verdicts of a few rules on decoded requests, without a node."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kio.schema.join_group.v9.request import JoinGroupRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

import suoi.broker  # noqa: F401  (registers every handler)
from suoi.api.authorization import ALLOWED, RULES, Deny, Filter, Split, check
from suoi.api.registry import REGISTRY, RequestContext
from suoi.authorizer import AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType, StandardAuthorizer
from suoi.model import ErrorCode


def test_every_registered_api_has_a_rule() -> None:
    assert sorted(set(REGISTRY) - set(RULES)) == []


def _ctx(api_key: int, principal: str = "User:alice") -> RequestContext:
    broker: Any = SimpleNamespace(kraft=None, config=SimpleNamespace(controller_listener_names=()), bound=())
    return RequestContext(broker, api_key, 9, 1, "c", "10.0.0.1:5555", SimpleNamespace(principal=principal))


def _authorizer(*acls: AclBinding) -> StandardAuthorizer:
    a = StandardAuthorizer()
    a.load(list(acls))
    return a


def test_group_and_metadata_verdicts() -> None:
    join = JoinGroupRequest(group_id="g", session_timeout=1000, rebalance_timeout=1000, member_id="",  # type: ignore[arg-type]
                            group_instance_id=None, protocol_type="consumer", protocols=(), reason=None)
    assert check(_ctx(11), join, _authorizer()) == Deny(ErrorCode.group_authorization_failed)
    read_g = AclBinding(ResourceType.GROUP, "g", PatternType.LITERAL, "User:alice", "10.0.0.1", AclOperation.READ,
                        AclPermissionType.ALLOW)
    assert check(_ctx(11), join, _authorizer(read_g)) is ALLOWED
    assert check(_ctx(11, "User:bob"), join, _authorizer(read_g)) == Deny(ErrorCode.group_authorization_failed)

    every = MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    assert isinstance(check(_ctx(3), every, _authorizer()), Filter)
    some = MetadataRequest(topics=tuple(MetadataRequestTopic(topic_id=None, name=n) for n in ("a", "b")),
                           allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    describe_a = AclBinding(ResourceType.TOPIC, "a", PatternType.LITERAL, "User:*", "*", AclOperation.DESCRIBE,
                            AclPermissionType.ALLOW)
    assert check(_ctx(3), some, _authorizer(describe_a)) == Split({1: ErrorCode.topic_authorization_failed},
                                                                  always_call=True)
