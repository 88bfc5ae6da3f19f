"""Prometheus families built at scrape time from the recorder, the node view and the runtime monitor.

Names are the Prometheus JMX exporter's usual rendering of Kafka's MBeans
(`kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=T` ->
`kafka_server_brokertopicmetrics_messagesin_total{topic="T"}`), so Kafka dashboards work with
few edits; consumer-group lag follows kafka-exporter (`kafka_consumergroup_lag`). Series that
Kafka reports without a topic (the all-topics meters) are the same family without the label.
Nothing here is touched on the request path: the families are made once per scrape, on the
event loop, by `steps()`, a generator the admin endpoint runs in slices with the encoding
(`exposition.run_sliced`); `collect()` gives them to prometheus-client at once. The big families
(per partition, per topic, per group) are `SeriesTable`s built from the node's tables in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from suoi.http.admin.exposition import ROWS_PER_STEP, DistributionTable, Family, SeriesTable, Table
from suoi.http.admin.node_view import ClusterView, GroupLag, NodeView, PartitionTable
from suoi.http.admin.runtime import IDLE_INTERVAL_S, PAUSE_BUCKETS_S, PauseHistogram, RuntimeMonitor
from suoi.metrics_recorder import LATENCY_BUCKETS_MS, MetricsRecorder, TopicCounters

#: BrokerTopicMetrics: (family suffix, TopicCounters attribute, help)
_TOPIC_METERS = (
    ("messagesin", "messages_in", "Records appended by this node as leader (MessagesInPerSec)."),
    ("bytesin", "bytes_in", "Record-batch bytes produced to this node as leader (BytesInPerSec)."),
    ("bytesout", "bytes_out", "Record-batch bytes sent to consumers (BytesOutPerSec)."),
    ("replicationbytesout", "replication_bytes_out", "Record-batch bytes sent to follower replicas."),
    ("totalproducerequests", "produce_requests", "Produce partition requests (TotalProduceRequestsPerSec)."),
    ("totalfetchrequests", "fetch_requests", "Fetch partition requests (TotalFetchRequestsPerSec)."),
    ("failedproducerequests", "failed_produce", "Produce partition requests that failed (FailedProduceRequestsPerSec)."),
    ("failedfetchrequests", "failed_fetch", "Fetch partition requests that failed (FailedFetchRequestsPerSec)."),
)


class NodeCollector(Collector):
    """Everything `GET /metrics` shows except prometheus-client's process/platform collectors."""

    def __init__(self, view: NodeView, recorder: MetricsRecorder, runtime: RuntimeMonitor,
                 log_partitions_max: int) -> None:
        self.view = view
        self.recorder = recorder
        self.runtime = runtime
        #: per-partition kafka_log_log_* series are left out above this many partitions (-1: no cap)
        self.log_partitions_max = log_partitions_max

    def collect(self) -> Iterator[Metric]:
        """Every family as prometheus-client's Metric, read at one instant."""
        for family in self.steps():
            if family is not None:
                yield family.to_metric() if isinstance(family, Table) else family

    def steps(self) -> Iterator[Family | None]:
        """Every family, in /metrics order, each made when it is reached; None after a step of
        reading the node (the endpoint may let the event loop run there): the partitions are
        read `ROWS_PER_STEP` at a time. What one family sums up is read in one step (the
        all-topics series and the topics', the replica counts)."""
        yield from self._topic_metrics()
        yield from self._request_metrics()
        yield None
        table = yield from self.view.partition_table(self.log_partitions_max, ROWS_PER_STEP)
        yield from self._replica_metrics(table)
        yield from self._log_metrics(table)
        yield None
        yield from self._controller_metrics(self.view.cluster())
        yield None
        yield from self._group_metrics(self.view.group_lags())
        yield None
        yield from self._runtime_metrics()

    # -- BrokerTopicMetrics ------------------------------------------------------------
    def _topic_metrics(self) -> Iterator[SeriesTable]:
        """Per-topic series for the topics on this node; a topic that is gone (deleted, or moved
        away) drops its series, as Kafka removes a deleted topic's metrics, and its counts move
        to `recorder.retired` so that the all-topics series never go down."""
        recorder = self.recorder
        per_topic: dict[str, TopicCounters] = {}
        for key, counters in list(recorder.topics.items()):
            name = self.view.topic_name(key)
            if name is None:
                _add(recorder.retired, counters)
                del recorder.topics[key]
            else:
                _add(per_topic.setdefault(name, TopicCounters()), counters)
        topics = sorted(per_topic)
        rows: list[tuple[str, ...]] = [(topic,) for topic in topics]
        rows.append(())  # the all-topics series
        for suffix, attr, doc in _TOPIC_METERS:
            values: list[float] = [getattr(per_topic[topic], attr) for topic in topics]
            values.append(getattr(recorder.retired, attr) + sum(values))
            yield SeriesTable(f"kafka_server_brokertopicmetrics_{suffix}", doc, "counter", ("topic",), rows, values)

    # -- RequestMetrics / SocketServer ---------------------------------------------------
    def _request_metrics(self) -> Iterator[Family]:
        labels = ["request"]
        requests = SeriesTable("kafka_network_requestmetrics_requests", "Requests answered, per API.", "counter", labels)
        errors = SeriesTable("kafka_network_requestmetrics_errors",
                             "Requests whose handler failed (answered with an error response).", "counter", labels)
        total = DistributionTable("kafka_network_requestmetrics_totaltimems",
                                  "Time from a request's arrival to its answer being ready (ms).", "histogram", labels,
                                  _LATENCY_LE)
        local = DistributionTable("kafka_network_requestmetrics_localtimems", "Time the handler itself took (ms).",
                                  "summary", labels)
        remote = DistributionTable("kafka_network_requestmetrics_remotetimems",
                                   "Time waiting after the handler: replication, long poll, quorum (ms).", "summary",
                                   labels)
        for api, stats in sorted(self.recorder.requests.items()):
            row = (api,)
            requests.add(row, stats.count)
            errors.add(row, stats.errors)
            total.add(row, _cumulative(stats.total), stats.total_sum)
            local.add(row, (stats.count,), stats.total_sum - stats.remote_sum)
            remote.add(row, (stats.count,), stats.remote_sum)
        yield from (requests, errors, total, local, remote)
        connections = GaugeMetricFamily("kafka_network_socketserver_connections",
                                        "Open client connections per listener.", labels=["listener"])
        for listener, count in sorted(self.view.connections().items()):
            connections.add_metric([listener], count)
        yield connections

    # -- ReplicaManager --------------------------------------------------------------
    def _replica_metrics(self, table: PartitionTable) -> Iterator[Metric]:
        prefix = "kafka_server_replicamanager_"
        for name, value, doc in (
            ("partitioncount", table.partitions, "Partition replicas hosted on this node."),
            ("leadercount", table.leaders, "Partitions this node leads."),
            ("underreplicatedpartitions", table.under_replicated,
             "Led partitions whose ISR is smaller than their replica set."),
            ("underminisrpartitioncount", table.under_min_isr,
             "Led partitions whose ISR is below min.insync.replicas (acks=all produce fails)."),
            ("atminisrpartitioncount", table.at_min_isr,
             "Led partitions whose ISR is exactly min.insync.replicas."),
        ):
            yield GaugeMetricFamily(prefix + name, doc, value=value)
        yield CounterMetricFamily(prefix + "isrshrinks", "ISR shrinks of partitions led here (AlterPartition or the controller).",
                                  value=self.recorder.isr_shrinks)
        yield CounterMetricFamily(prefix + "isrexpands", "ISR expansions of partitions led here.",
                                  value=self.recorder.isr_expands)
        sessions = self.recorder.fetch_sessions
        if sessions is not None:  # Kafka's kafka.server:type=FetchSessionCache
            prefix = "kafka_server_fetchsessioncache_"
            yield GaugeMetricFamily(prefix + "numincrementalfetchsessions", "KIP-227 fetch sessions cached here.",
                                    value=len(sessions))
            yield GaugeMetricFamily(prefix + "numincrementalfetchpartitionscached",
                                    "Partitions held by the cached fetch sessions.", value=sessions.num_partitions)
            yield CounterMetricFamily(prefix + "incrementalfetchsessionevictionspersec",
                                      "Fetch sessions evicted to make room for new ones.", value=sessions.evictions)

    # -- Log -------------------------------------------------------------------------
    def _log_metrics(self, table: PartitionTable) -> Iterator[Family]:
        capped = 0 <= self.log_partitions_max < table.partitions
        yield GaugeMetricFamily("suoi_log_partition_metrics_omitted",
                                "1 when kafka_log_log_* are left out: more partitions here than "
                                "admin.metrics.log.partitions.max.", value=int(capped))
        if capped:
            return
        labels = ("topic", "partition")
        rows = table.labels
        for name, doc, values in (
            ("kafka_log_log_size", "Bytes of the partition's log segments.", table.size_bytes),
            ("kafka_log_log_logendoffset", "The log end offset.", table.log_end_offset),
            ("kafka_log_log_logstartoffset", "The log start offset.", table.log_start_offset),
            ("kafka_log_log_numlogsegments", "Segments of the log.", table.segments),
        ):
            yield SeriesTable(name, doc, "gauge", labels, rows, values)

    # -- KafkaController and Raft (KRaft mode) ---------------------------------------
    def _controller_metrics(self, c: ClusterView) -> Iterator[Metric]:
        prefix = "kafka_controller_kafkacontroller_"
        for name, value, doc in (
            ("activecontrollercount", int(c.is_active_controller), "1 on the active controller, else 0."),
            ("offlinepartitionscount", c.offline_partitions, "Partitions without a leader."),
            ("globaltopiccount", c.topics, "Topics in the cluster."),
            ("globalpartitioncount", c.partitions, "Partitions in the cluster."),
            ("fencedbrokercount", c.fenced_brokers, "Registered brokers that are fenced."),
            ("activebrokercount", c.brokers - c.fenced_brokers, "Registered brokers that are unfenced."),
            ("preferredreplicaimbalancecount", c.preferred_replica_imbalance,
             "Partitions led by a replica other than their preferred one."),
            ("lastappliedrecordoffset", c.metadata_offset, "Offset of the last metadata record applied here."),
        ):
            yield GaugeMetricFamily(prefix + name, doc, value=value)
        raft = c.raft
        if raft is None:
            return
        prefix = "kafka_server_raft_metrics_"
        for name, value, doc in (
            ("current_leader", raft.leader_id, "The metadata quorum's leader (-1: none known)."),
            ("current_epoch", raft.epoch, "The quorum's epoch (each election increments it)."),
            ("high_watermark", raft.high_watermark, "The metadata log's committed offset."),
            ("log_end_offset", raft.log_end_offset, "The metadata log's end offset here."),
            ("number_unknown_voter_connections", 0, "Always 0: voters are static here."),
            ("voters", raft.voters, "Voters in the metadata quorum."),
        ):
            yield GaugeMetricFamily(prefix + name, doc, value=value)
        state = GaugeMetricFamily(prefix + "current_state", "1 for this node's Raft role.", labels=["state"])
        state.add_metric([raft.state], 1)
        yield state
        r = self.recorder
        yield CounterMetricFamily(prefix + "leader_changes", "Quorum leaders this node has seen elected.",
                                  value=r.raft_leader_changes)
        yield SummaryMetricFamily(prefix + "commit_latency_ms", "Active controller: append to commit of its records (ms).",
                                  count_value=r.raft_commits, sum_value=r.raft_commit_seconds * 1000)
        yield GaugeMetricFamily(prefix + "commit_latency_max_ms", "Active controller: the longest commit wait (ms).",
                                value=r.raft_commit_max_seconds * 1000)

    # -- consumer groups (kafka-exporter's names) -----------------------------------
    def _group_metrics(self, groups: Sequence[GroupLag]) -> Iterator[SeriesTable]:
        part_labels = ("consumergroup", "topic", "partition")
        lag = SeriesTable("kafka_consumergroup_lag", "High watermark minus committed offset.", "gauge", part_labels)
        offsets: list[float] = []
        current = SeriesTable("kafka_consumergroup_current_offset", "The group's committed offset.", "gauge",
                              part_labels, lag.rows, offsets)
        lag_sum = SeriesTable("kafka_consumergroup_lag_sum", "Lag summed over a topic's partitions.", "gauge",
                              ("consumergroup", "topic"))
        lag_max = SeriesTable("kafka_consumergroup_lag_max", "Largest partition lag of the group.", "gauge",
                              ("consumergroup",))
        member_counts: list[float] = []
        members = SeriesTable("kafka_consumergroup_members", "Members of the group.", "gauge", ("consumergroup",),
                              lag_max.rows, member_counts)
        state = SeriesTable("kafka_consumergroup_state", "1 for the group's state.", "gauge", ("consumergroup", "state"))
        for group in groups:
            name = group.group
            sums: dict[str, int] = {}
            for (topic, partition), (offset, _hw, value) in sorted(group.partitions.items()):
                lag.add((name, topic, str(partition)), value)
                offsets.append(offset)  # current's rows are lag's
                sums[topic] = sums.get(topic, 0) + value
            for topic, value in sorted(sums.items()):
                lag_sum.add((name, topic), value)
            lag_max.add((name,), max((v for _, _, v in group.partitions.values()), default=0))
            member_counts.append(group.members)  # members' rows are lag_max's
            state.add((name, group.state), 1)
        yield from (lag, current, lag_sum, lag_max, members, state)

    # -- runtime ---------------------------------------------------------------------
    def _runtime_metrics(self) -> Iterator[Family]:
        ready = self.view.readiness()
        yield GaugeMetricFamily("suoi_node_ready", "1 when /v1/status/ready answers 200.", value=int(ready.ready))
        yield _pauses("suoi_eventloop_lag_seconds", "How late the event loop ran a timer (probe every "
                      f"{self.runtime.interval_s}s, every {IDLE_INTERVAL_S:g}s while the loop is idle): the node's "
                      "'network processor idle' turned around.",
                      self.runtime.loop_lag)
        yield GaugeMetricFamily("suoi_eventloop_lag_last_seconds", "The last event-loop lag probe.",
                                value=self.runtime.last_loop_lag)
        yield _pauses("suoi_gc_pause_seconds", "Garbage-collector pauses (the event loop stops meanwhile).",
                      self.runtime.gc_pauses)


def _add(into: TopicCounters, counters: TopicCounters) -> None:
    for attr in TopicCounters.__slots__:
        setattr(into, attr, getattr(into, attr) + getattr(counters, attr))


def _le(bounds: Iterable[float]) -> tuple[str, ...]:
    """Bucket upper bounds as `le` label values (prometheus-client's: `repr(float)`), +Inf last."""
    return (*(repr(float(bound)) for bound in bounds), "+Inf")


_LATENCY_LE = _le(LATENCY_BUCKETS_MS)
_PAUSE_LE = _le(PAUSE_BUCKETS_S)


def _cumulative(counts: Sequence[int]) -> list[float]:
    """Per-bucket counts (the last one: above every bound) -> cumulative counts per `le`."""
    out: list[float] = []
    running = 0
    for count in counts:
        running += count
        out.append(running)
    return out


def _pauses(name: str, doc: str, hist: PauseHistogram) -> DistributionTable:
    family = DistributionTable(name, doc, "histogram", (), _PAUSE_LE)
    family.add((), _cumulative(hist.buckets), hist.sum)
    return family
