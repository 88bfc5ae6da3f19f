"""Apache Kafka 4.0's broker and topic configs: name, type, default, valid values and, for
brokers, the dynamic update mode. Facts transcribed from Kafka's generated configuration
docs (kafka.apache.org/40/configuration: broker-configs, topic-configs), one row per config:

    name|type|default|valid values|update mode

``null`` is a null default, ``""`` the empty string; an empty "valid values" column means
any value of the type. Kept as data (not code) so that a newer Kafka's table can replace it
wholesale; `suoi.configdefs.defs` parses it once at import.
"""

# Rows are data, one config per line, however long.
# ruff: noqa: E501
from __future__ import annotations

__all__ = ["BROKER_ROWS", "EXTENSION_TOPIC_ROWS", "TOPIC_ROWS"]

BROKER_ROWS = """\
add.partitions.to.txn.retry.backoff.max.ms|int|100|[0,...]|read-only
add.partitions.to.txn.retry.backoff.ms|int|20|[1,...]|read-only
advertised.listeners|string|null||read-only
alter.config.policy.class.name|class|null||read-only
alter.log.dirs.replication.quota.window.num|int|11|[1,...]|read-only
alter.log.dirs.replication.quota.window.size.seconds|int|1|[1,...]|read-only
authorizer.class.name|string|""|non-null string|read-only
auto.create.topics.enable|boolean|true||read-only
auto.leader.rebalance.enable|boolean|true||read-only
background.threads|int|10|[1,...]|cluster-wide
broker.heartbeat.interval.ms|int|2000||read-only
broker.id|int|-1||read-only
broker.rack|string|null||read-only
broker.session.timeout.ms|int|9000||read-only
client.quota.callback.class|class|null||read-only
compression.gzip.level|int|-1|[1,...,9] or -1|cluster-wide
compression.lz4.level|int|9|[1,...,17]|cluster-wide
compression.type|string|producer|[uncompressed, zstd, lz4, snappy, gzip, producer]|cluster-wide
compression.zstd.level|int|3|[-131072,...,22]|cluster-wide
connection.failed.authentication.delay.ms|int|100|[0,...]|read-only
connections.max.idle.ms|long|600000||read-only
connections.max.reauth.ms|long|0||read-only
controlled.shutdown.enable|boolean|true||read-only
controller.listener.names|string|null||read-only
controller.quorum.append.linger.ms|int|25||read-only
controller.quorum.bootstrap.servers|list|""|non-empty list|read-only
controller.quorum.election.backoff.max.ms|int|1000||read-only
controller.quorum.election.timeout.ms|int|1000||read-only
controller.quorum.fetch.timeout.ms|int|2000||read-only
controller.quorum.request.timeout.ms|int|2000||read-only
controller.quorum.retry.backoff.ms|int|20||read-only
controller.quorum.voters|list|""|non-empty list|read-only
controller.quota.window.num|int|11|[1,...]|read-only
controller.quota.window.size.seconds|int|1|[1,...]|read-only
controller.socket.timeout.ms|int|30000||read-only
create.topic.policy.class.name|class|null||read-only
default.replication.factor|int|1||read-only
delegation.token.expiry.check.interval.ms|long|3600000|[1,...]|read-only
delegation.token.expiry.time.ms|long|86400000|[1,...]|read-only
delegation.token.max.lifetime.ms|long|604800000|[1,...]|read-only
delegation.token.secret.key|password|null||read-only
delete.records.purgatory.purge.interval.requests|int|1||read-only
delete.topic.enable|boolean|true||read-only
early.start.listeners|string|null||read-only
fetch.max.bytes|int|57671680|[1024,...]|read-only
fetch.purgatory.purge.interval.requests|int|1000||read-only
group.consumer.assignors|list|uniform,range||read-only
group.consumer.heartbeat.interval.ms|int|5000|[1,...]|read-only
group.consumer.max.heartbeat.interval.ms|int|15000|[1,...]|read-only
group.consumer.max.session.timeout.ms|int|60000|[1,...]|read-only
group.consumer.max.size|int|2147483647|[1,...]|read-only
group.consumer.migration.policy|string|bidirectional|(case insensitive) [DISABLED, DOWNGRADE, UPGRADE, BIDIRECTIONAL]|read-only
group.consumer.min.heartbeat.interval.ms|int|5000|[1,...]|read-only
group.consumer.min.session.timeout.ms|int|45000|[1,...]|read-only
group.consumer.session.timeout.ms|int|45000|[1,...]|read-only
group.coordinator.append.linger.ms|int|5|[0,...]|read-only
group.coordinator.rebalance.protocols|list|classic,consumer|[consumer, classic]|read-only
group.coordinator.threads|int|4|[1,...]|read-only
group.initial.rebalance.delay.ms|int|3000||read-only
group.max.session.timeout.ms|int|1800000||read-only
group.max.size|int|2147483647|[1,...]|read-only
group.min.session.timeout.ms|int|6000||read-only
group.share.delivery.count.limit|int|5|[2,...,10]|read-only
group.share.heartbeat.interval.ms|int|5000|[1,...]|read-only
group.share.max.groups|short|10|[1,...,100]|read-only
group.share.max.heartbeat.interval.ms|int|15000|[1,...]|read-only
group.share.max.record.lock.duration.ms|int|60000|[30000,...,3600000]|read-only
group.share.max.session.timeout.ms|int|60000|[1,...]|read-only
group.share.max.size|int|200|[1,...,1000]|read-only
group.share.min.heartbeat.interval.ms|int|5000|[1,...]|read-only
group.share.min.record.lock.duration.ms|int|15000|[1000,...,30000]|read-only
group.share.min.session.timeout.ms|int|45000|[1,...]|read-only
group.share.partition.max.record.locks|int|200|[100,...,10000]|read-only
group.share.record.lock.duration.ms|int|30000|[1000,...,3600000]|read-only
group.share.session.timeout.ms|int|45000|[1,...]|read-only
initial.broker.registration.timeout.ms|int|60000||read-only
inter.broker.listener.name|string|null||read-only
kafka.metrics.polling.interval.secs|int|10|[1,...]|read-only
kafka.metrics.reporters|list|""||read-only
leader.imbalance.check.interval.seconds|long|300|[1,...]|read-only
leader.imbalance.per.broker.percentage|int|10||read-only
listener.security.protocol.map|string|SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT||per-broker
listeners|string|PLAINTEXT://:9092||per-broker
log.cleaner.backoff.ms|long|15000|[0,...]|cluster-wide
log.cleaner.dedupe.buffer.size|long|134217728||cluster-wide
log.cleaner.delete.retention.ms|long|86400000|[0,...]|cluster-wide
log.cleaner.enable|boolean|true||read-only
log.cleaner.io.buffer.load.factor|double|0.9||cluster-wide
log.cleaner.io.buffer.size|int|524288|[0,...]|cluster-wide
log.cleaner.io.max.bytes.per.second|double|1.7976931348623157E308||cluster-wide
log.cleaner.max.compaction.lag.ms|long|9223372036854775807|[1,...]|cluster-wide
log.cleaner.min.cleanable.ratio|double|0.5|[0,...,1]|cluster-wide
log.cleaner.min.compaction.lag.ms|long|0|[0,...]|cluster-wide
log.cleaner.threads|int|1|[0,...]|cluster-wide
log.cleanup.policy|list|delete|[compact, delete]|cluster-wide
log.dir|string|/tmp/kafka-logs||read-only
log.dir.failure.timeout.ms|long|30000|[1,...]|read-only
log.dirs|string|null||read-only
log.flush.interval.messages|long|9223372036854775807|[1,...]|cluster-wide
log.flush.interval.ms|long|null||cluster-wide
log.flush.offset.checkpoint.interval.ms|int|60000|[0,...]|read-only
log.flush.scheduler.interval.ms|long|9223372036854775807||read-only
log.flush.start.offset.checkpoint.interval.ms|int|60000|[0,...]|read-only
log.index.interval.bytes|int|4096|[0,...]|cluster-wide
log.index.size.max.bytes|int|10485760|[4,...]|cluster-wide
log.local.retention.bytes|long|-2|[-2,...]|cluster-wide
log.local.retention.ms|long|-2|[-2,...]|cluster-wide
log.message.timestamp.after.max.ms|long|3600000|[0,...]|cluster-wide
log.message.timestamp.before.max.ms|long|9223372036854775807|[0,...]|cluster-wide
log.message.timestamp.type|string|CreateTime|[CreateTime, LogAppendTime]|cluster-wide
log.preallocate|boolean|false||cluster-wide
log.retention.bytes|long|-1||cluster-wide
log.retention.check.interval.ms|long|300000|[1,...]|read-only
log.retention.hours|int|168||read-only
log.retention.minutes|int|null||read-only
log.retention.ms|long|null||cluster-wide
log.roll.hours|int|168|[1,...]|read-only
log.roll.jitter.hours|int|0|[0,...]|read-only
log.roll.jitter.ms|long|null||cluster-wide
log.roll.ms|long|null||cluster-wide
log.segment.bytes|int|1073741824|[1048576,...]|cluster-wide
log.segment.delete.delay.ms|long|60000|[0,...]|cluster-wide
max.connection.creation.rate|int|2147483647|[0,...]|cluster-wide
max.connections|int|2147483647|[0,...]|cluster-wide
max.connections.per.ip|int|2147483647|[0,...]|cluster-wide
max.connections.per.ip.overrides|string|""||cluster-wide
max.incremental.fetch.session.cache.slots|int|1000|[0,...]|read-only
max.request.partition.size.limit|int|2000|[1,...]|read-only
message.max.bytes|int|1048588|[0,...]|cluster-wide
metadata.log.dir|string|null||read-only
metadata.log.max.record.bytes.between.snapshots|long|20971520|[1,...]|read-only
metadata.log.max.snapshot.interval.ms|long|3600000|[0,...]|read-only
metadata.log.segment.bytes|int|1073741824|[12,...]|read-only
metadata.log.segment.ms|long|604800000||read-only
metadata.max.idle.interval.ms|int|500|[0,...]|read-only
metadata.max.retention.bytes|long|104857600||read-only
metadata.max.retention.ms|long|604800000||read-only
metric.reporters|list|""||cluster-wide
metrics.num.samples|int|2|[1,...]|read-only
metrics.recording.level|string|INFO||read-only
metrics.sample.window.ms|long|30000|[1,...]|read-only
min.insync.replicas|int|1|[1,...]|cluster-wide
node.id|int|-1||read-only
num.io.threads|int|8|[1,...]|cluster-wide
num.network.threads|int|3|[1,...]|cluster-wide
num.partitions|int|1|[1,...]|read-only
num.recovery.threads.per.data.dir|int|1|[1,...]|cluster-wide
num.replica.alter.log.dirs.threads|int|null||read-only
num.replica.fetchers|int|1||cluster-wide
offset.metadata.max.bytes|int|4096||read-only
offsets.commit.timeout.ms|int|5000|[1,...]|read-only
offsets.load.buffer.size|int|5242880|[1,...]|read-only
offsets.retention.check.interval.ms|long|600000|[1,...]|read-only
offsets.retention.minutes|int|10080|[1,...]|read-only
offsets.topic.compression.codec|int|0||read-only
offsets.topic.num.partitions|int|50|[1,...]|read-only
offsets.topic.replication.factor|short|3|[1,...]|read-only
offsets.topic.segment.bytes|int|104857600|[1,...]|read-only
password.encoder.cipher.algorithm|string|AES/CBC/PKCS5Padding||read-only
password.encoder.iterations|int|4096|[1024,...]|read-only
password.encoder.key.length|int|128|[8,...]|read-only
password.encoder.keyfactory.algorithm|string|null||read-only
password.encoder.old.secret|password|null||read-only
password.encoder.secret|password|null||read-only
principal.builder.class|class|org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder||per-broker
process.roles|list|""|[broker, controller]|read-only
producer.id.expiration.ms|int|86400000|[1,...]|cluster-wide
producer.purgatory.purge.interval.requests|int|1000||read-only
queued.max.request.bytes|long|-1||read-only
queued.max.requests|int|500|[1,...]|read-only
quota.window.num|int|11|[1,...]|read-only
quota.window.size.seconds|int|1|[1,...]|read-only
remote.fetch.max.wait.ms|int|500|[1,...]|cluster-wide
remote.list.offsets.request.timeout.ms|long|30000|[1,...]|cluster-wide
remote.log.index.file.cache.total.size.bytes|long|1073741824|[1,...]|cluster-wide
remote.log.manager.copier.thread.pool.size|int|10|[1,...]|cluster-wide
remote.log.manager.copy.max.bytes.per.second|long|9223372036854775807|[1,...]|cluster-wide
remote.log.manager.copy.quota.window.num|int|11|[1,...]|read-only
remote.log.manager.copy.quota.window.size.seconds|int|1|[1,...]|read-only
remote.log.manager.expiration.thread.pool.size|int|10|[1,...]|cluster-wide
remote.log.manager.fetch.max.bytes.per.second|long|9223372036854775807|[1,...]|cluster-wide
remote.log.manager.fetch.quota.window.num|int|11|[1,...]|read-only
remote.log.manager.fetch.quota.window.size.seconds|int|1|[1,...]|read-only
remote.log.manager.task.interval.ms|long|30000|[1,...]|read-only
remote.log.manager.thread.pool.size|int|2|[1,...]|read-only
remote.log.metadata.custom.metadata.max.bytes|int|128|[0,...]|read-only
remote.log.metadata.manager.class.name|string|org.apache.kafka.server.log.remote.metadata.storage.TopicBasedRemoteLogMetadataManager|non-empty string|read-only
remote.log.metadata.manager.class.path|string|null||read-only
remote.log.metadata.manager.impl.prefix|string|rlmm.config.|non-empty string|read-only
remote.log.metadata.manager.listener.name|string|null|non-empty string|read-only
remote.log.reader.max.pending.tasks|int|100|[1,...]|read-only
remote.log.reader.threads|int|10|[1,...]|cluster-wide
remote.log.storage.manager.class.name|string|null|non-empty string|read-only
remote.log.storage.manager.class.path|string|null||read-only
remote.log.storage.manager.impl.prefix|string|rsm.config.|non-empty string|read-only
remote.log.storage.system.enable|boolean|false||read-only
replica.fetch.backoff.ms|int|1000|[0,...]|read-only
replica.fetch.max.bytes|int|1048576|[0,...]|read-only
replica.fetch.min.bytes|int|1||read-only
replica.fetch.response.max.bytes|int|10485760|[0,...]|read-only
replica.fetch.wait.max.ms|int|500||read-only
replica.high.watermark.checkpoint.interval.ms|long|5000||read-only
replica.lag.time.max.ms|long|30000||read-only
replica.selector.class|string|null||read-only
replica.socket.receive.buffer.bytes|int|65536||read-only
replica.socket.timeout.ms|int|30000||read-only
replication.quota.window.num|int|11|[1,...]|read-only
replication.quota.window.size.seconds|int|1|[1,...]|read-only
request.timeout.ms|int|30000||read-only
sasl.client.callback.handler.class|class|null||read-only
sasl.enabled.mechanisms|list|GSSAPI||per-broker
sasl.jaas.config|password|null||per-broker
sasl.kerberos.kinit.cmd|string|/usr/bin/kinit||per-broker
sasl.kerberos.min.time.before.relogin|long|60000||per-broker
sasl.kerberos.principal.to.local.rules|list|DEFAULT||per-broker
sasl.kerberos.service.name|string|null||per-broker
sasl.kerberos.ticket.renew.jitter|double|0.05||per-broker
sasl.kerberos.ticket.renew.window.factor|double|0.8||per-broker
sasl.login.callback.handler.class|class|null||read-only
sasl.login.class|class|null||read-only
sasl.login.connect.timeout.ms|int|null||read-only
sasl.login.read.timeout.ms|int|null||read-only
sasl.login.refresh.buffer.seconds|short|300||per-broker
sasl.login.refresh.min.period.seconds|short|60||per-broker
sasl.login.refresh.window.factor|double|0.8||per-broker
sasl.login.refresh.window.jitter|double|0.05||per-broker
sasl.login.retry.backoff.max.ms|long|10000||read-only
sasl.login.retry.backoff.ms|long|100||read-only
sasl.mechanism.controller.protocol|string|GSSAPI||read-only
sasl.mechanism.inter.broker.protocol|string|GSSAPI||per-broker
sasl.oauthbearer.clock.skew.seconds|int|30||read-only
sasl.oauthbearer.expected.audience|list|null||read-only
sasl.oauthbearer.expected.issuer|string|null||read-only
sasl.oauthbearer.jwks.endpoint.refresh.ms|long|3600000||read-only
sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms|long|10000||read-only
sasl.oauthbearer.jwks.endpoint.retry.backoff.ms|long|100||read-only
sasl.oauthbearer.jwks.endpoint.url|string|null||read-only
sasl.oauthbearer.scope.claim.name|string|scope||read-only
sasl.oauthbearer.sub.claim.name|string|sub||read-only
sasl.oauthbearer.token.endpoint.url|string|null||read-only
sasl.server.callback.handler.class|class|null||read-only
sasl.server.max.receive.size|int|524288||read-only
security.inter.broker.protocol|string|PLAINTEXT|[PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]|read-only
security.providers|string|null||read-only
share.coordinator.append.linger.ms|int|10|[0,...]|read-only
share.coordinator.load.buffer.size|int|5242880|[1,...]|read-only
share.coordinator.snapshot.update.records.per.snapshot|int|500|[0,...]|read-only
share.coordinator.state.topic.compression.codec|int|0||read-only
share.coordinator.state.topic.min.isr|short|2|[1,...]|read-only
share.coordinator.state.topic.num.partitions|int|50|[1,...]|read-only
share.coordinator.state.topic.replication.factor|short|3|[1,...]|read-only
share.coordinator.state.topic.segment.bytes|int|104857600|[1,...]|read-only
share.coordinator.threads|int|1|[1,...]|read-only
share.coordinator.write.timeout.ms|int|5000|[1,...]|read-only
share.fetch.purgatory.purge.interval.requests|int|1000||read-only
socket.connection.setup.timeout.max.ms|long|30000||read-only
socket.connection.setup.timeout.ms|long|10000||read-only
socket.listen.backlog.size|int|50|[1,...]|read-only
socket.receive.buffer.bytes|int|102400||read-only
socket.request.max.bytes|int|104857600|[1,...]|read-only
socket.send.buffer.bytes|int|102400||read-only
ssl.allow.dn.changes|boolean|false||read-only
ssl.allow.san.changes|boolean|false||read-only
ssl.cipher.suites|list|""||per-broker
ssl.client.auth|string|none|[required, requested, none]|per-broker
ssl.enabled.protocols|list|TLSv1.2||per-broker
ssl.endpoint.identification.algorithm|string|https||per-broker
ssl.engine.factory.class|class|null||per-broker
ssl.key.password|password|null||per-broker
ssl.keymanager.algorithm|string|SunX509||per-broker
ssl.keystore.certificate.chain|password|null||per-broker
ssl.keystore.key|password|null||per-broker
ssl.keystore.location|string|null||per-broker
ssl.keystore.password|password|null||per-broker
ssl.keystore.type|string|JKS||per-broker
ssl.principal.mapping.rules|string|DEFAULT||read-only
ssl.protocol|string|TLSv1.2||per-broker
ssl.provider|string|null||per-broker
ssl.secure.random.implementation|string|null||per-broker
ssl.trustmanager.algorithm|string|PKIX||per-broker
ssl.truststore.certificates|password|null||per-broker
ssl.truststore.location|string|null||per-broker
ssl.truststore.password|password|null||per-broker
ssl.truststore.type|string|JKS||per-broker
telemetry.max.bytes|int|1048576|[1,...]|read-only
transaction.abort.timed.out.transaction.cleanup.interval.ms|int|10000|[1,...]|read-only
transaction.max.timeout.ms|int|900000|[1,...]|read-only
transaction.partition.verification.enable|boolean|true||cluster-wide
transaction.remove.expired.transaction.cleanup.interval.ms|int|3600000|[1,...]|read-only
transaction.state.log.load.buffer.size|int|5242880|[1,...]|read-only
transaction.state.log.min.isr|int|2|[1,...]|read-only
transaction.state.log.num.partitions|int|50|[1,...]|read-only
transaction.state.log.replication.factor|short|3|[1,...]|read-only
transaction.state.log.segment.bytes|int|104857600|[1,...]|read-only
transactional.id.expiration.ms|int|604800000|[1,...]|read-only
unclean.leader.election.enable|boolean|false||cluster-wide
"""

TOPIC_ROWS = """\
cleanup.policy|list|delete|[compact, delete]
compression.gzip.level|int|-1|[1,...,9] or -1
compression.lz4.level|int|9|[1,...,17]
compression.type|string|producer|[uncompressed, zstd, lz4, snappy, gzip, producer]
compression.zstd.level|int|3|[-131072,...,22]
delete.retention.ms|long|86400000|[0,...]
file.delete.delay.ms|long|60000|[0,...]
flush.messages|long|9223372036854775807|[1,...]
flush.ms|long|9223372036854775807|[0,...]
follower.replication.throttled.replicas|list|""|[partitionId]:[brokerId],[partitionId]:[brokerId],...
index.interval.bytes|int|4096|[0,...]
leader.replication.throttled.replicas|list|""|[partitionId]:[brokerId],[partitionId]:[brokerId],...
local.retention.bytes|long|-2|[-2,...]
local.retention.ms|long|-2|[-2,...]
max.compaction.lag.ms|long|9223372036854775807|[1,...]
max.message.bytes|int|1048588|[0,...]
message.timestamp.after.max.ms|long|3600000|[0,...]
message.timestamp.before.max.ms|long|9223372036854775807|[0,...]
message.timestamp.type|string|CreateTime|[CreateTime, LogAppendTime]
min.cleanable.dirty.ratio|double|0.5|[0,...,1]
min.compaction.lag.ms|long|0|[0,...]
min.insync.replicas|int|1|[1,...]
preallocate|boolean|false
remote.log.copy.disable|boolean|false
remote.log.delete.on.disable|boolean|false
remote.storage.enable|boolean|false
retention.bytes|long|-1
retention.ms|long|604800000|[-1,...]
segment.bytes|int|1073741824|[14,...]
segment.index.bytes|int|10485760|[4,...]
segment.jitter.ms|long|0|[0,...]
segment.ms|long|604800000|[1,...]
unclean.leader.election.enable|boolean|false
"""

#: Topic configs of Confluent Server and Redpanda (not Apache Kafka) that suoi implements: broker-side
#: schema id validation (`suoi.partition.schema_validation`). Same row format as `TOPIC_ROWS`.
EXTENSION_TOPIC_ROWS = """\
confluent.key.schema.validation|boolean|false
confluent.key.subject.name.strategy|string|io.confluent.kafka.serializers.subject.TopicNameStrategy
confluent.value.schema.validation|boolean|false
confluent.value.subject.name.strategy|string|io.confluent.kafka.serializers.subject.TopicNameStrategy
redpanda.key.schema.id.validation|boolean|false
redpanda.key.subject.name.strategy|string|TopicNameStrategy
redpanda.value.schema.id.validation|boolean|false
redpanda.value.subject.name.strategy|string|TopicNameStrategy
"""
