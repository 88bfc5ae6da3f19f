"""OAUTHBEARER between nodes: a 3-node cluster whose controller and inter-broker listeners take only
SASL/OAUTHBEARER, the nodes authenticating with Kafka's default (unsecured) login callback, its
claims from the listeners' JAAS configs. The quorum forms, and a topic with min.insync.replicas=3
takes acks=all writes from confluent-kafka (an unsecured JWT too): every follower fetched them."""

from __future__ import annotations

import asyncio
import datetime

from confluent_kafka import Producer
from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from suoi.client import request_once
from suoi.security.listeners import inter_broker_security
from suoi.testing.inprocess import InProcessCluster
from tests.conftest import wait_until

JAAS = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
        'unsecuredLoginStringClaim_sub="broker" unsecuredLoginLifetimeSeconds="600";')


def test_nodes_authenticate_to_each_other_with_oauthbearer() -> None:
    overrides = {
        "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.mechanism.inter.broker.protocol": "OAUTHBEARER",
        "sasl.mechanism.controller.protocol": "OAUTHBEARER",
        "listener.name.plaintext.oauthbearer.sasl.jaas.config": JAAS,
        "listener.name.controller.oauthbearer.sasl.jaas.config": JAAS,
    }
    with InProcessCluster(3, overrides=overrides) as cluster:
        first = cluster.nodes[1]
        security = inter_broker_security(first.broker.config)  # the nodes' own credentials
        request = CreateTopicsRequest(topics=(CreatableTopic(
            name=TopicName("oauth-rf3"), num_partitions=i32(1), replication_factor=i16(3), assignments=(),
            configs=(CreatableTopicConfig(name="min.insync.replicas", value="3"),)),),
            timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)), validate_only=False)
        answer = asyncio.run(request_once(first.host, first.port, request, security=security))
        assert [t.error_code for t in answer.topics] == [0]
        wait_until(lambda: all(n.broker.kraft.image.topic("oauth-rf3") is not None for n in cluster.nodes.values()))
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanisms": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
                             "sasl.oauthbearer.config": "principal=app", "acks": "all"})
        errors: list[object] = []
        for i in range(20):
            producer.produce("oauth-rf3", str(i).encode(), on_delivery=lambda err, msg: errors.append(err))
        assert producer.flush(30) == 0
        assert errors == [None] * 20  # acks=all with min.insync.replicas=3: both followers fetched them
