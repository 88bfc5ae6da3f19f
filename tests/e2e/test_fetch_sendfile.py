"""Fetch answers whose records go from the segment files by sendfile (`suoi.net.file_send`),
read by real clients on an in-process node: librdkafka and kafka-python get every record,
read_committed skips an aborted transaction of large batches, a TLS listener gets the same
records by the copy path, and answers queued on a connection whose client does not read stay
in request order and whole while their topic is deleted."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from kio.schema.api_versions.v3.request import ApiVersionsRequest

from suoi.net.file_send import STATS
from suoi.protocol.records import iter_records
from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume, ck_produce, kp_consume
from tests.e2e.security_helpers import external_listener_props, make_pki, tls_keystore
from tests.e2e.txn_helpers import ck_read_to_end, txn_producer
from tests.integration.support import fetch_req
from tests.rawclient import RawClient

VALUE = 1000  # bytes a record: 1 MB a partition reaches the sendfile size many times over


def _records(n: int, partitions: int, tag: bytes = b"v") -> list[dict]:
    return [{"value": tag + b"%07d" % i + b"." * (VALUE - 8 - len(tag)), "partition": i % partitions}
            for i in range(n)]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    props, _plain, _tls = external_listener_props("SSL", **tls_keystore(pki))
    props["log.dirs"] = str(tmp_path_factory.mktemp("sendfile") / "data")
    props["transaction.state.log.replication.factor"] = "1"
    props["transaction.state.log.min.isr"] = "1"
    n = InProcessNode(tmp_path_factory.mktemp("node"), properties=props)
    n.pki = pki  # type: ignore[attr-defined]
    n.tls_port = _tls  # type: ignore[attr-defined]
    n.start()
    try:
        yield n
    finally:
        n.stop()


def test_clients_read_every_record_sent_from_the_files(node: InProcessNode) -> None:
    node.create_topic("sendfile-read", partitions=2)
    records = _records(2000, 2)
    ck_produce(node.bootstrap, "sendfile-read", records, {"linger.ms": 50})
    before = STATS.sendfile_bytes
    for consume in (ck_consume, kp_consume):
        got = consume(node.bootstrap, "sendfile-read", [0, 1], len(records))
        assert sorted((r.partition, r.offset, r.value) for r in got) == sorted(
            (i % 2, i // 2, r["value"]) for i, r in enumerate(records))
    assert STATS.sendfile_bytes - before >= 2 * len(records) * VALUE  # both consumers' records went by sendfile


def test_read_committed_skips_an_aborted_transaction_sent_from_the_files(node: InProcessNode) -> None:
    topic = "sendfile-txn"
    node.create_topic(topic)
    producer = txn_producer(node.bootstrap, "sendfile-txn")
    for tag, commit in ((b"a", False), (b"c", True)):
        producer.begin_transaction()
        for r in _records(600, 1, tag):
            producer.produce(topic, value=r["value"], partition=0)
        producer.flush(20)
        (producer.commit_transaction if commit else producer.abort_transaction)(20)
    before = STATS.sendfile_bytes
    got = ck_read_to_end(node.bootstrap, topic, [0], isolation="read_committed")
    assert [m.value() for m in got] == [r["value"] for r in _records(600, 1, b"c")]
    assert STATS.sendfile_bytes - before >= 1200 * VALUE  # aborted records are sent too: the client drops them
    everything = ck_read_to_end(node.bootstrap, topic, [0], isolation="read_uncommitted")
    assert len(everything) == 1200


def test_a_tls_client_gets_the_same_records_by_the_copy_path(node: InProcessNode) -> None:
    node.create_topic("sendfile-tls")
    records = _records(1500, 1)
    ck_produce(node.bootstrap, "sendfile-tls", records, {"linger.ms": 50})
    sent, copied = STATS.sendfile_bytes, STATS.copied_bytes
    tls = {"security.protocol": "SSL", "ssl.ca.location": node.pki.ca_file}  # type: ignore[attr-defined]
    got = ck_consume(f"127.0.0.1:{node.tls_port}", "sendfile-tls", [0], len(records), conf=tls)  # type: ignore[attr-defined]
    assert [r.value for r in got] == [r["value"] for r in records]
    assert STATS.copied_bytes - copied >= len(records) * VALUE
    assert STATS.sendfile_bytes == sent


def _answers(sock: socket.socket, n: int) -> list[bytes]:
    out = []
    buf = b""
    while len(out) < n:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = sock.recv(1 << 20)
            assert chunk, f"connection closed after {len(out)} answers"
            buf += chunk
        size = struct.unpack(">i", buf[:4])[0]
        out.append(buf[4:4 + size])
        buf = buf[4 + size:]
    return out


def test_answers_queued_behind_a_slow_reader_stay_in_order_and_whole_when_the_topic_is_deleted(
        node: InProcessNode) -> None:
    topic = "sendfile-deleted"
    node.create_topic(topic)
    records = _records(3000, 1)
    ck_produce(node.bootstrap, topic, records, {"linger.ms": 50})
    with RawClient(node.bootstrap) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        requests = []
        for i in range(6):  # pipelined, not read: each answer is 1 MB from the segment file
            request = fetch_req(topic, 0, i * 500, max_bytes=4 << 20) if i % 2 == 0 else ApiVersionsRequest(
                client_software_name="raw", client_software_version="1")
            requests.append(request)
            client.send_bytes(client.encode(request))
        wait_until(lambda: any(c.sending_from_files for c in list(node.broker.connections)),
                   message="an answer waiting for the socket")
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        admin.delete_topics([topic])[topic].result(20)
        wait_until(lambda: not list(Path(node.properties["log.dirs"]).glob(f"{topic}-0/*.log")),
                   message="the segment files deleted")
        client.sock.settimeout(20)
        frames = _answers(client.sock, len(requests))
    values = [r["value"] for r in records]
    for i, (request, frame) in enumerate(zip(requests, frames, strict=True)):
        correlation_id, body = client.decode(request, frame)
        assert correlation_id == i + 1
        if i % 2:
            continue
        part = body.responses[0].partitions[0]
        served = [(r.offset, r.value) for r in iter_records(part.records)]
        offsets = [offset for offset, _ in served]
        assert i * 500 in offsets and len(part.records) > 500_000
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
        assert all(values[offset] == value for offset, value in served)


def test_answers_to_the_frames_of_one_read_keep_request_order_around_file_regions(node: InProcessNode) -> None:
    """Frames that come in one read are answered in one write (`KafkaConnection._batch`); an
    answer with file regions among them goes after what was batched before it and before the rest."""
    topic = "sendfile-batched"
    node.create_topic(topic)
    records = _records(600, 1)
    ck_produce(node.bootstrap, topic, records, {"linger.ms": 50})
    versions = ApiVersionsRequest(client_software_name="raw", client_software_version="1")
    requests = [versions, fetch_req(topic, 0, 0), versions, versions, fetch_req(topic, 0, 599), versions]
    before = STATS.sendfile_bytes
    with RawClient(node.bootstrap) as client:
        client.send_bytes(b"".join(client.encode(r) for r in requests))  # one write: one read on the node
        client.sock.settimeout(20)
        frames = _answers(client.sock, len(requests))
    answers = [client.decode(r, f) for r, f in zip(requests, frames, strict=True)]
    assert [cid for cid, _ in answers] == list(range(1, len(requests) + 1))
    assert all(body.error_code == 0 and body.api_keys for (_, body), r in zip(answers, requests, strict=True) if r is versions)
    first = [r.value for r in iter_records(answers[1][1].responses[0].partitions[0].records)]
    assert first == [r["value"] for r in records][:len(first)] and len(first) >= 500
    last = [(r.offset, r.value) for r in iter_records(answers[4][1].responses[0].partitions[0].records)]
    assert (599, records[599]["value"]) in last
    assert STATS.sendfile_bytes - before >= 500 * VALUE  # the first Fetch's records went from the file
