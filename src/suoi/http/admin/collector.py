"""Prometheus families built at scrape time from the recorder, the node view and the runtime monitor.

Names are the Prometheus JMX exporter's usual rendering of Kafka's MBeans
(`kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=T` ->
`kafka_server_brokertopicmetrics_messagesin_total{topic="T"}`), so Kafka dashboards work with
few edits; consumer-group lag follows kafka-exporter (`kafka_consumergroup_lag`). Series that
Kafka reports without a topic (the all-topics meters) are the same family without the label.
Nothing here is touched on the request path: `collect()` runs once per scrape, the admin
endpoint's in two steps (`snapshot` on the event loop, `families` in a thread).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from suoi.http.admin.node_view import ClusterView, GroupLag, NodeView, PartitionView
from suoi.http.admin.runtime import PAUSE_BUCKETS_S, PauseHistogram, RuntimeMonitor
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


@dataclass(frozen=True)
class NodeSnapshot:
    """The node's state for one scrape (`NodeCollector.snapshot`)."""

    topics: list[Metric]
    requests: list[Metric]
    partitions: list[PartitionView]
    cluster: ClusterView | None
    groups: list[GroupLag]
    runtime: list[Metric]


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
        return self.families(self.snapshot())

    def snapshot(self) -> NodeSnapshot:
        """What the families are made of, read now: on the event loop, which changes all of it.
        The topic, request and runtime families are small and made here (the topic counters of
        a deleted topic retire as they are read); the per-partition ones, most of a scrape, are
        made by `families`, which may run in another thread."""
        return NodeSnapshot(list(self._topic_metrics()), list(self._request_metrics()), self.view.partitions(),
                            self.view.cluster(), self.view.group_lags(), list(self._runtime_metrics()))

    def families(self, snap: NodeSnapshot) -> Iterator[Metric]:
        """Every family of `snap`, in /metrics order; reads nothing the loop changes but plain
        counters (ISR changes, fetch-session counts), so it may run off the event loop."""
        yield from snap.topics
        yield from snap.requests
        yield from self._replica_metrics(snap.partitions)
        yield from self._log_metrics(snap.partitions)
        if snap.cluster is not None:
            yield from self._controller_metrics(snap.cluster)
        yield from self._group_metrics(snap.groups)
        yield from snap.runtime

    # -- BrokerTopicMetrics ------------------------------------------------------------
    def _topic_metrics(self) -> Iterator[Metric]:
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
        for suffix, attr, doc in _TOPIC_METERS:
            family = CounterMetricFamily(f"kafka_server_brokertopicmetrics_{suffix}", doc)
            total = getattr(recorder.retired, attr)
            for topic in sorted(per_topic):
                value = getattr(per_topic[topic], attr)
                total += value
                family.add_sample(family.name + "_total", {"topic": topic}, value)
            family.add_sample(family.name + "_total", {}, total)
            yield family

    # -- RequestMetrics / SocketServer ---------------------------------------------------
    def _request_metrics(self) -> Iterator[Metric]:
        labels = ["request"]
        requests = CounterMetricFamily("kafka_network_requestmetrics_requests", "Requests answered, per API.", labels=labels)
        errors = CounterMetricFamily("kafka_network_requestmetrics_errors",
                                     "Requests whose handler failed (answered with an error response).", labels=labels)
        total = HistogramMetricFamily("kafka_network_requestmetrics_totaltimems",
                                      "Time from a request's arrival to its answer being ready (ms).", labels=labels)
        local = SummaryMetricFamily("kafka_network_requestmetrics_localtimems",
                                    "Time the handler itself took (ms).", labels=labels)
        remote = SummaryMetricFamily("kafka_network_requestmetrics_remotetimems",
                                     "Time waiting after the handler: replication, long poll, quorum (ms).", labels=labels)
        for api, stats in sorted(self.recorder.requests.items()):
            name = [api]
            requests.add_metric(name, stats.count)
            errors.add_metric(name, stats.errors)
            total.add_metric(name, _buckets(LATENCY_BUCKETS_MS, stats.total), stats.total_sum)
            local.add_metric(name, stats.count, stats.total_sum - stats.remote_sum)
            remote.add_metric(name, stats.count, stats.remote_sum)
        yield from (requests, errors, total, local, remote)
        connections = GaugeMetricFamily("kafka_network_socketserver_connections",
                                        "Open client connections per listener.", labels=["listener"])
        for listener, count in sorted(self.view.connections().items()):
            connections.add_metric([listener], count)
        yield connections

    # -- ReplicaManager --------------------------------------------------------------
    def _replica_metrics(self, partitions: Sequence[PartitionView]) -> Iterator[Metric]:
        prefix = "kafka_server_replicamanager_"
        for name, value, doc in (
            ("partitioncount", len(partitions), "Partition replicas hosted on this node."),
            ("leadercount", sum(p.leader for p in partitions), "Partitions this node leads."),
            ("underreplicatedpartitions", sum(p.under_replicated for p in partitions),
             "Led partitions whose ISR is smaller than their replica set."),
            ("underminisrpartitioncount", sum(p.under_min_isr for p in partitions),
             "Led partitions whose ISR is below min.insync.replicas (acks=all produce fails)."),
            ("atminisrpartitioncount", sum(p.at_min_isr for p in partitions),
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
    def _log_metrics(self, partitions: Sequence[PartitionView]) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        families = {
            "size": GaugeMetricFamily("kafka_log_log_size", "Bytes of the partition's log segments.", labels=labels),
            "logendoffset": GaugeMetricFamily("kafka_log_log_logendoffset", "The log end offset.", labels=labels),
            "logstartoffset": GaugeMetricFamily("kafka_log_log_logstartoffset", "The log start offset.", labels=labels),
            "numlogsegments": GaugeMetricFamily("kafka_log_log_numlogsegments", "Segments of the log.", labels=labels),
        }
        capped = 0 <= self.log_partitions_max < len(partitions)
        yield GaugeMetricFamily("suoi_log_partition_metrics_omitted",
                                "1 when kafka_log_log_* are left out: more partitions here than "
                                "admin.metrics.log.partitions.max.", value=int(capped))
        if capped:
            return
        for p in sorted(partitions, key=lambda p: (p.topic, p.partition)):
            label = [p.topic, str(p.partition)]
            families["size"].add_metric(label, p.size_bytes)
            families["logendoffset"].add_metric(label, p.log_end_offset)
            families["logstartoffset"].add_metric(label, p.log_start_offset)
            families["numlogsegments"].add_metric(label, p.segments)
        yield from families.values()

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
    def _group_metrics(self, groups: Sequence[GroupLag]) -> Iterator[Metric]:
        part_labels = ["consumergroup", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "High watermark minus committed offset.", labels=part_labels)
        current = GaugeMetricFamily("kafka_consumergroup_current_offset", "The group's committed offset.",
                                    labels=part_labels)
        lag_sum = GaugeMetricFamily("kafka_consumergroup_lag_sum", "Lag summed over a topic's partitions.",
                                    labels=["consumergroup", "topic"])
        lag_max = GaugeMetricFamily("kafka_consumergroup_lag_max", "Largest partition lag of the group.",
                                    labels=["consumergroup"])
        members = GaugeMetricFamily("kafka_consumergroup_members", "Members of the group.", labels=["consumergroup"])
        state = GaugeMetricFamily("kafka_consumergroup_state", "1 for the group's state.",
                                  labels=["consumergroup", "state"])
        for group in groups:
            sums: dict[str, int] = {}
            for (topic, partition), (offset, _hw, value) in sorted(group.partitions.items()):
                lag.add_metric([group.group, topic, str(partition)], value)
                current.add_metric([group.group, topic, str(partition)], offset)
                sums[topic] = sums.get(topic, 0) + value
            for topic, value in sorted(sums.items()):
                lag_sum.add_metric([group.group, topic], value)
            lag_max.add_metric([group.group], max((v for _, _, v in group.partitions.values()), default=0))
            members.add_metric([group.group], group.members)
            state.add_metric([group.group, group.state], 1)
        yield from (lag, current, lag_sum, lag_max, members, state)

    # -- runtime ---------------------------------------------------------------------
    def _runtime_metrics(self) -> Iterator[Metric]:
        ready = self.view.readiness()
        yield GaugeMetricFamily("suoi_node_ready", "1 when /v1/status/ready answers 200.", value=int(ready.ready))
        yield _pauses("suoi_eventloop_lag_seconds", "How late the event loop ran a timer (probe every "
                      f"{self.runtime.interval_s}s): the node's 'network processor idle' turned around.",
                      self.runtime.loop_lag)
        yield GaugeMetricFamily("suoi_eventloop_lag_last_seconds", "The last event-loop lag probe.",
                                value=self.runtime.last_loop_lag)
        yield _pauses("suoi_gc_pause_seconds", "Garbage-collector pauses (the event loop stops meanwhile).",
                      self.runtime.gc_pauses)


def _add(into: TopicCounters, counters: TopicCounters) -> None:
    for attr in TopicCounters.__slots__:
        setattr(into, attr, getattr(into, attr) + getattr(counters, attr))


def _buckets(bounds: Iterable[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts -> prometheus-client's cumulative (le, count) pairs ending at +Inf."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(bounds, counts, strict=False):
        running += count
        out.append((repr(float(bound)), running))
    out.append(("+Inf", running + counts[-1]))
    return out


def _pauses(name: str, doc: str, hist: PauseHistogram) -> Metric:
    family = HistogramMetricFamily(name, doc, buckets=_buckets(PAUSE_BUCKETS_S, hist.buckets), sum_value=hist.sum)
    return family

