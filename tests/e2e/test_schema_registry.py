"""The schema registry (issue 16) with Confluent's own clients: confluent-kafka's
SchemaRegistryClient and its Avro, JSON Schema and Protobuf serializers round-trip records through a
suoi topic, registering schemas automatically; REST errors carry Confluent's codes; compatibility
is enforced; standalone `suoi schema-registry` processes forward writes to their primary, fail
over, and replay `_schemas` on restart with the same ids; a new primary fences the old one's writes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok, suoi
from tests.e2e.helpers import ck_consume
from tests.e2e.test_single_node_kraft import make_run_properties

REPO = Path(__file__).resolve().parents[2]
CT = "application/vnd.schemaregistry.v1+json"

ORDER_V1 = {"type": "record", "name": "Order", "namespace": "shop",
            "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, str]]:
    """make run's node with its own registry (schema.registry.listeners)."""
    port, cport, rport = free_port(), free_port(), free_port()
    props = make_run_properties(port, cport)
    props["schema.registry.listeners"] = f"http://127.0.0.1:{rport}"
    with EmbeddedBroker(tmp_path_factory.mktemp("registry"), port=port, overrides=props) as broker:
        url = f"http://127.0.0.1:{rport}"
        wait_until(lambda: rest(url, "GET", "/subjects")[0] == 200, 30, 0.1, "the node's registry")
        yield broker, url


def rest(url: str, method: str, path: str, body: Any = None, *, content_type: str = CT,
         raw: bytes | None = None) -> tuple[int, Any, str]:
    """(status, JSON body, content type) of one call."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=40) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers.get("Content-Type", "")
    except (urllib.error.URLError, ConnectionError):
        return 0, None, ""


def round_trip(bootstrap: str, topic: str, serializer: Any, deserializer: Any, values: list[Any]) -> list[Any]:
    producer = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        producer.produce(topic, value=serializer(v, SerializationContext(topic, MessageField.VALUE)))
    assert producer.flush(20) == 0
    records = ck_consume(bootstrap, topic, [0], len(values), timeout=20)
    return [deserializer(r.value, SerializationContext(topic, MessageField.VALUE)) for r in records]


def test_avro_serializer_round_trips_records_through_a_topic(node: tuple[EmbeddedBroker, str]) -> None:
    broker, url = node
    client = SchemaRegistryClient({"url": url})
    serializer = AvroSerializer(client, json.dumps(ORDER_V1))
    values = [{"id": 1, "item": "tea"}, {"id": 2, "item": "cake"}]
    got = round_trip(broker.bootstrap, "orders-avro", serializer, AvroDeserializer(client), values)
    assert got == values
    latest = client.get_latest_version("orders-avro-value")
    assert (latest.version, latest.schema.schema_type) == (1, "AVRO")
    records = ck_consume(broker.bootstrap, "orders-avro", [0], 1, timeout=20)
    assert records[0].value[0] == 0 and int.from_bytes(records[0].value[1:5], "big") == latest.schema_id
    assert client.get_schema(latest.schema_id).schema_str == latest.schema.schema_str
    # the same schema under another subject keeps its id (ids are global)
    assert client.register_schema("other-value", Schema(json.dumps(ORDER_V1), "AVRO")) == latest.schema_id
    assert rest(url, "GET", f"/schemas/ids/{latest.schema_id}/subjects")[1] == ["orders-avro-value", "other-value"]


def test_json_schema_and_protobuf_serializers_round_trip(node: tuple[EmbeddedBroker, str]) -> None:
    broker, url = node
    client = SchemaRegistryClient({"url": url})
    schema = json.dumps({"type": "object", "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
                         "required": ["id"]})
    values = [{"id": 7, "item": "jam"}]
    got = round_trip(broker.bootstrap, "orders-json", JSONSerializer(schema, client),
                     JSONDeserializer(schema, schema_registry_client=client), values)
    assert got == values
    assert client.get_latest_version("orders-json-value").schema.schema_type == "JSON"
    with pytest.raises(Exception, match="is not of type 'integer'"):  # the serializer validates
        JSONSerializer(schema, client)({"id": "x"}, SerializationContext("orders-json", MessageField.VALUE))

    order = _protobuf_order_class()
    pb_values = [order(id=3, item="bread"), order(id=4, item="milk")]
    pb_values[0].price.units, pb_values[0].at.seconds = 250, 1_700_000_000
    got = round_trip(broker.bootstrap, "orders-pb", ProtobufSerializer(order, client, {"use.deprecated.format": False}),
                     ProtobufDeserializer(order, {"use.deprecated.format": False}), pb_values)
    assert [(m.id, m.item, m.price.units, m.at.seconds) for m in got] == [(3, "bread", 250, 1_700_000_000),
                                                                         (4, "milk", 0, 0)]
    latest = client.get_latest_version("orders-pb-value")
    assert latest.schema.schema_type == "PROTOBUF"
    assert [(r.name, r.subject, r.version) for r in latest.schema.references] == [
        ("money/money.proto", "money/money.proto", 1)]
    assert rest(url, "GET", "/subjects/money%2Fmoney.proto/versions/1/referencedby")[1] == [latest.schema_id]
    assert rest(url, "DELETE", "/subjects/money%2Fmoney.proto")[1]["error_code"] == 42206  # still referenced
    # the .proto text form (Java clients, curl) is read too, and served as descriptors on request
    text = 'syntax = "proto3";\npackage suoitest;\nmessage Order { int64 id = 1; string item = 2; }\n'
    status, body, _ = rest(url, "POST", "/subjects/orders-text-value/versions", {"schema": text, "schemaType": "PROTOBUF"})
    assert status == 200, body
    assert rest(url, "GET", f"/schemas/ids/{body['id']}")[1]["schema"] == text
    serialized = rest(url, "GET", f"/schemas/ids/{body['id']}?format=serialized")[1]["schema"]
    fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(serialized))
    assert [f.name for f in fdp.message_type[0].field] == ["id", "item"]


def _protobuf_order_class() -> Any:
    """suoitest.Order(id, item, price: money.Money, at: google.protobuf.Timestamp) in two files: the
    serializer registers money/money.proto as a subject of its own and references it."""
    from google.protobuf import timestamp_pb2

    F = descriptor_pb2.FieldDescriptorProto
    money = descriptor_pb2.FileDescriptorProto(name="money/money.proto", package="money", syntax="proto3")
    money.message_type.add(name="Money").field.add(name="units", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    fdp = descriptor_pb2.FileDescriptorProto(name="suoi_order.proto", package="suoitest", syntax="proto3",
                                             dependency=["money/money.proto", "google/protobuf/timestamp.proto"])
    msg = fdp.message_type.add(name="Order")
    msg.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    msg.field.add(name="item", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="price", number=3, type=F.TYPE_MESSAGE, type_name=".money.Money", label=F.LABEL_OPTIONAL)
    msg.field.add(name="at", number=4, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp",
                  label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    for f in (timestamp, money, fdp):
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("suoitest.Order"))


def test_backward_compatibility_is_enforced(node: tuple[EmbeddedBroker, str]) -> None:
    _, url = node
    client = SchemaRegistryClient({"url": url})
    subject = "compat-value"
    client.register_schema(subject, Schema(json.dumps(ORDER_V1), "AVRO"))
    no_default = {**ORDER_V1, "fields": [*ORDER_V1["fields"], {"name": "qty", "type": "int"}]}
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema(subject, Schema(json.dumps(no_default), "AVRO"))
    assert (err.value.http_status_code, err.value.error_code) == (409, 409)
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in err.value.error_message
    verdict = rest(url, "POST", f"/compatibility/subjects/{subject}/versions/latest?verbose=true",
                   {"schema": json.dumps(no_default)})
    assert verdict[0] == 200 and verdict[1]["is_compatible"] is False and verdict[1]["messages"]
    with_default = {**ORDER_V1, "fields": [*ORDER_V1["fields"], {"name": "qty", "type": "int", "default": 1}]}
    assert client.test_compatibility(subject, Schema(json.dumps(with_default), "AVRO")) is True
    client.register_schema(subject, Schema(json.dumps(with_default), "AVRO"))
    assert client.get_versions(subject) == [1, 2]
    # NONE lets anything in; the subject-level setting wins over the global one
    assert client.set_compatibility(subject, "NONE") == {"compatibility": "NONE"}
    assert rest(url, "GET", f"/config/{subject}")[1] == {"compatibilityLevel": "NONE"}
    assert rest(url, "GET", "/config")[1] == {"compatibilityLevel": "BACKWARD"}
    client.register_schema(subject, Schema(json.dumps(no_default), "AVRO"))
    assert client.get_versions(subject) == [1, 2, 3]


def test_rest_errors_carry_confluents_codes(node: tuple[EmbeddedBroker, str]) -> None:
    _, url = node
    status, body, ctype = rest(url, "POST", "/subjects/errs-value/versions", {"schema": json.dumps(ORDER_V1)})
    assert status == 200 and ctype.startswith(CT)
    cases = [
        ("GET", "/subjects/nope/versions", None, 404, 40401),
        ("GET", "/subjects/errs-value/versions/9", None, 404, 40402),
        ("GET", "/subjects/errs-value/versions/abc", None, 422, 42202),
        ("GET", "/subjects/errs-value/versions/0", None, 422, 42202),
        ("GET", "/schemas/ids/99999", None, 404, 40403),
        ("POST", "/subjects/errs-value", {"schema": json.dumps({**ORDER_V1, "name": "Other"})}, 404, 40403),
        ("POST", "/subjects/errs-value/versions", {"schema": "{not json"}, 422, 42201),
        ("POST", "/subjects/errs-value/versions", {"schema": json.dumps({"type": "record", "name": "R"})}, 422, 42201),
        ("POST", "/subjects/errs-value/versions", {"schema": "{}", "schemaType": "XML"}, 422, 42201),
        ("PUT", "/config", {"compatibility": "SIDEWAYS"}, 422, 42203),
        ("PUT", "/mode", {"mode": "SLEEPY"}, 422, 42204),
        ("GET", "/config/errs-value", None, 404, 40408),
        ("GET", "/nowhere", None, 404, 404),
    ]
    for method, path, req, want_status, want_code in cases:
        status, body, ctype = rest(url, method, path, req)
        assert (status, body["error_code"]) == (want_status, want_code), (method, path, body)
        assert isinstance(body["message"], str) and ctype.startswith(CT)
    for version in ("latest", "-1", "1"):
        assert rest(url, "GET", f"/subjects/errs-value/versions/{version}")[1]["version"] == 1
    assert rest(url, "POST", "/subjects/errs-value/versions", raw=b"<xml/>", content_type="text/xml")[0] == 415
    status, body, _ = rest(url, "POST", "/subjects/errs-value/versions", raw=b"x" * (10 * 1024 * 1024))
    assert (status, body["error_code"]) == (413, 413)
    assert rest(url, "GET", "/schemas/types")[1] == ["JSON", "PROTOBUF", "AVRO"]
    assert "Traceback" not in node[0].logs()  # bad input: an answer, never a traceback


def test_soft_and_hard_deletes(node: tuple[EmbeddedBroker, str]) -> None:
    _, url = node
    subject = "del-value"
    v2 = {**ORDER_V1, "fields": [*ORDER_V1["fields"], {"name": "note", "type": "string", "default": ""}]}
    status, registered, _ = rest(url, "POST", f"/subjects/{subject}/versions", {"schema": json.dumps(ORDER_V1)})
    assert status == 200, (status, registered)
    first = registered["id"]
    status, registered, _ = rest(url, "POST", f"/subjects/{subject}/versions", {"schema": json.dumps(v2)})
    assert status == 200, (status, registered)
    assert rest(url, "DELETE", f"/subjects/{subject}/versions/1?permanent=true")[1]["error_code"] == 40407
    assert rest(url, "DELETE", f"/subjects/{subject}/versions/1") == (200, 1, CT)
    assert rest(url, "GET", f"/subjects/{subject}/versions")[1] == [2]
    assert rest(url, "GET", f"/subjects/{subject}/versions?deleted=true")[1] == [1, 2]
    assert rest(url, "GET", f"/schemas/ids/{first}")[0] == 200  # old data stays readable
    assert rest(url, "DELETE", f"/subjects/{subject}?permanent=true")[1]["error_code"] == 40405
    assert rest(url, "DELETE", f"/subjects/{subject}")[1] == [2]
    assert subject not in rest(url, "GET", "/subjects")[1]
    assert subject in rest(url, "GET", "/subjects?deleted=true")[1]
    assert rest(url, "DELETE", f"/subjects/{subject}")[1]["error_code"] == 40404
    assert rest(url, "DELETE", f"/subjects/{subject}?permanent=true")[1] == [1, 2]
    assert rest(url, "GET", f"/subjects/{subject}/versions?deleted=true")[1]["error_code"] == 40401
    # a new registration after a hard delete starts again at version 1 with a new id
    again = rest(url, "POST", f"/subjects/{subject}/versions", {"schema": json.dumps({**ORDER_V1, "doc": "x"})})[1]
    assert again["id"] > first
    assert rest(url, "GET", f"/subjects/{subject}/versions")[1] == [1]


def start_registry(bootstrap: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "suoi", "schema-registry", "--bootstrap-server", bootstrap,
                             "--listen", f"127.0.0.1:{port}", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: rest(url, "GET", "/subjects")[0] == 200, 30, 0.1, "a standalone registry")
    return proc, url


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> str:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    return err.decode()


def test_standalone_registries_forward_fail_over_and_replay_on_restart(node: tuple[EmbeddedBroker, str]) -> None:
    """Two `suoi schema-registry` processes (their own topic and group: the node's registry would be
    their primary otherwise). The second forwards writes to the first (the primary); killed, the first's
    role passes to the second; restarted, the first replays the topic (same ids and versions) and takes
    writes again (the group may make it the primary again, or it forwards: either way id 3 comes next)."""
    broker, _ = node
    args = ("--topic", "_schemas_pair", "--group-id", "pair")
    first, first_url = start_registry(broker.bootstrap, *args)
    second, second_url = start_registry(broker.bootstrap, *args)
    procs = [first, second]
    try:
        schema = {**ORDER_V1, "name": "Pair"}
        status, body, _ = rest(second_url, "POST", "/subjects/pair-value/versions", {"schema": json.dumps(schema)})
        assert (status, body) == (200, {"id": 1})  # forwarded to the primary, and readable here at once
        assert rest(second_url, "GET", "/subjects/pair-value/versions/1")[1]["id"] == 1
        assert rest(first_url, "GET", "/subjects/pair-value/versions/1")[1]["id"] == 1
        stop(first, signal.SIGKILL)  # no goodbye: the group notices after session.timeout.ms
        assert rest(second_url, "GET", "/subjects/pair-value/versions/1")[1]["id"] == 1  # reads go on
        v2 = {**schema, "fields": [*schema["fields"], {"name": "n", "type": "int", "default": 0}]}
        wait_until(lambda: rest(second_url, "POST", "/subjects/pair-value/versions",
                                {"schema": json.dumps(v2)})[0] == 200, 30, 0.5, "the survivor to take over writes")
        again, again_url = start_registry(broker.bootstrap, *args)
        procs.append(again)
        assert [rest(again_url, "GET", f"/subjects/pair-value/versions/{v}")[1]["id"] for v in (1, 2)] == [1, 2]
        assert rest(again_url, "GET", "/schemas/ids/1")[1]["schema"] == json.dumps(schema, separators=(",", ":"))
        v3 = {**v2, "fields": [*v2["fields"], {"name": "m", "type": "int", "default": 0}]}
        assert rest(again_url, "POST", "/subjects/pair-value/versions", {"schema": json.dumps(v3)})[1] == {"id": 3}
    finally:
        errors = [stop(p) for p in procs if p.poll() is None]
    assert not any("Traceback" in e for e in errors), errors


def test_a_new_primary_fences_the_previous_ones_writes(node: tuple[EmbeddedBroker, str]) -> None:
    """The single-writer guarantee does not rest on election timing: the newer writer's
    InitProducerId fences the older one, whose append then fails and never becomes visible."""
    import asyncio

    from suoi.http.registry.topic import SchemaTopic

    broker, _ = node
    seen: list[tuple[int, bytes | None]] = []

    async def run() -> None:
        reader = SchemaTopic(broker.bootstrap, "_schemas_fence", lambda batch, pos: seen.extend(
            (o, k) for o, k, _ in batch), transactional_id="fence-writer")
        old = SchemaTopic(broker.bootstrap, "_schemas_fence", lambda b, p: None, transactional_id="fence-writer")
        await reader.start()
        await old.start()
        try:
            await old.init_writer()
            assert await old.append([(b"k1", b"{}")]) == 0
            new = SchemaTopic(broker.bootstrap, "_schemas_fence", lambda b, p: None, transactional_id="fence-writer")
            await new.start()
            try:
                await new.init_writer()
                with pytest.raises(Exception, match="(?i)fenced"):
                    await old.append([(b"zombie", b"{}")])
                last = await new.append([(b"k2", b"{}")])
            finally:
                await new.close()
            deadline = asyncio.get_running_loop().time() + 15
            while not any(o == last for o, _ in seen) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await old.close()
            await reader.close()

    asyncio.run(run())
    assert [k for _, k in seen] == [b"k1", b"k2"]


def test_the_npm_client_registers_encodes_and_decodes(node: tuple[EmbeddedBroker, str]) -> None:
    """@kafkajs/confluent-schema-registry with kafkajs (`make tools` installs both); it also decodes
    what confluent-kafka's AvroSerializer wrote (test_avro_serializer_round_trips_records_through_a_topic)."""
    broker, url = node
    js_dir = REPO / "tests" / "js"
    node_bin = shutil.which("node")
    assert node_bin, "node is not on PATH (this test needs Node.js >= 18 and `make tools`)"
    assert (js_dir / "node_modules" / "@kafkajs" / "confluent-schema-registry").is_dir(), "run `make tools`"
    proc = subprocess.run([node_bin, "schema_registry.js", "--bootstrap", broker.bootstrap, "--registry", url,
                           "--topic", "js-readings", "--python-topic", "orders-avro"],
                          cwd=js_dir, capture_output=True, text=True, timeout=25, check=False,
                          env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["id"] == summary["again"] == summary["latest"]
    assert summary["decoded"] == [{"sensor": "a", "value": 1.5}, {"sensor": "b", "value": -2}]
    assert summary["python"] == {"id": 1, "item": "tea"}
    assert rest(url, "GET", f"/schemas/ids/{summary['id']}/subjects")[1] == ["js-readings-value"]


def test_suoi_schemas_tool(node: tuple[EmbeddedBroker, str], tmp_path: Path) -> None:
    _, url = node
    schema_file = tmp_path / "reading.avsc"
    schema_file.write_text(json.dumps({"type": "record", "name": "Reading", "fields": [{"name": "v", "type": "int"}]}))
    reg = ("--schema-registry", url)
    registered = ok("schemas", "register", "--subject", "tool-value", "--schema-file", str(schema_file), *reg)
    schema_id = int(registered.split()[1])
    assert "tool-value" in ok("schemas", "list", *reg).split()
    got = json.loads(ok("schemas", "get", "--subject", "tool-value", "--output", "json", *reg))
    assert (got["id"], got["version"]) == (schema_id, 1)
    breaking = json.dumps({"type": "record", "name": "Reading", "fields": [{"name": "v", "type": "string"}]})
    proc = suoi("schemas", "check", "--subject", "tool-value", "--schema", breaking, *reg)
    assert proc.returncode == 1 and proc.stdout.startswith("incompatible") and "TYPE_MISMATCH" in proc.stdout
    assert "Subject 'nope' not found. (error code 40401)" in fails("schemas", "get", "--subject", "nope", *reg)


def test_the_readme_example_runs_as_written(node: tuple[EmbeddedBroker, str]) -> None:
    """The README's schema-registry block, run as is (only the addresses changed)."""
    import re

    broker, url = node
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.findall(r"^```python\n(.*?)^```", readme.split("## Schema registry", 1)[1], flags=re.S | re.M)[0]
    code = code.replace("http://localhost:8081", url).replace("localhost:9092", broker.bootstrap)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    latest = rest(url, "GET", "/subjects/orders-value/versions/latest")[1]
    assert json.loads(latest["schema"])["name"] == "Order"
    record = ck_consume(broker.bootstrap, "orders", [0], 1, timeout=20)[0]
    assert record.value[0] == 0 and int.from_bytes(record.value[1:5], "big") == latest["id"]


def test_console_producer_and_consumer_with_schema_formats(node: tuple[EmbeddedBroker, str]) -> None:
    """kafka-avro-console-producer's flags: JSON lines in, Confluent framing on the topic, JSON out."""
    broker, url = node
    avro_schema = json.dumps({"type": "record", "name": "Tick", "fields": [{"name": "sym", "type": "string"},
                                                                          {"name": "px", "type": "double"}]})
    common = ("--bootstrap-server", broker.bootstrap, "--schema-registry", url)
    ok("console-producer", "--topic", "ticks", "--value-format", "avro", "--property", f"value.schema={avro_schema}",
       "--property", "parse.key=true", "--property", "key.separator=|", *common,
       stdin='k1|{"sym": "ABC", "px": 1.5}\nk2|{"sym": "XYZ", "px": 2.25}\n')
    latest = rest(url, "GET", "/subjects/ticks-value/versions/latest")[1]
    record = ck_consume(broker.bootstrap, "ticks", [0], 1, timeout=20)[0]
    assert (record.key, record.value[0], int.from_bytes(record.value[1:5], "big")) == (b"k1", 0, latest["id"])
    out = ok("console-consumer", "--topic", "ticks", "--from-beginning", "--max-messages", "2", "--value-format",
             "avro", "--property", "print.key=true", *common)
    assert [(k, json.loads(v)) for k, v in (line.split("\t") for line in out.splitlines())] == [
        ("k1", {"sym": "ABC", "px": 1.5}), ("k2", {"sym": "XYZ", "px": 2.25})]

    proto = 'syntax = "proto3"; package tick; message Tick { string sym = 1; int64 qty = 2; }'
    ok("console-producer", "--topic", "ticks-pb", "--value-format", "protobuf", "--property", f"value.schema={proto}",
       *common, stdin='{"sym": "ABC", "qty": "7"}\n')
    out = ok("console-consumer", "--topic", "ticks-pb", "--from-beginning", "--max-messages", "1",
             "--value-format", "protobuf", *common)
    assert json.loads(out) == {"sym": "ABC", "qty": "7"}  # proto3 JSON: int64 as a string
