#!/usr/bin/env node
// kafkajs end-to-end against a suoi broker; driven by tests/e2e/test_kafkajs.py.
//
//   node roundtrip.js --mode group --bootstrap HOST:PORT --topic T --group G [--partitions 3] [--count 30]
//   node roundtrip.js --mode txn   --bootstrap HOST:PORT --topic T --group G --txn-id TID
//
// (each option may also come from the environment: SUOI_BOOTSTRAP, SUOI_TOPIC, SUOI_GROUP, ...)
//
// group: creates the topic with the admin client, produces `count` keyed messages with
//   headers (three sends, the middle one gzip), consumes them all in consumer group G
//   (JoinGroup/SyncGroup/Heartbeat/OffsetFetch), commits explicitly, leaves; then produces
//   `extra` more and a second consumer in the same group must resume at the committed
//   offsets and see only those.
// txn: creates the topic (2 partitions); one transactional producer runs three
//   transactions: commit (with sendOffsets for group G), abort (with sendOffsets too), commit;
//   then kafkajs consumers read the topic read_committed (groups G-rc) and read_uncommitted (G-ru).
//
// Prints one JSON summary on stdout. Exits non-zero on any error or when --timeout-ms passes.

'use strict'

const { Kafka, logLevel, CompressionTypes, Partitioners } = require('kafkajs')

function option (name, fallback) {
  const flag = `--${name}`
  const i = process.argv.indexOf(flag)
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1]
  const env = process.env[`SUOI_${name.toUpperCase().replace(/-/g, '_')}`]
  if (env !== undefined && env !== '') return env
  if (fallback === undefined) throw new Error(`missing ${flag}`)
  return fallback
}

const mode = option('mode', 'group')
const bootstrap = option('bootstrap')
const topic = option('topic')
const group = option('group')
const partitions = Number(option('partitions', mode === 'txn' ? '2' : '3'))
const count = Number(option('count', '30'))
const extra = Number(option('extra', '6'))
const timeoutMs = Number(option('timeout-ms', '15000'))

const started = Date.now()
const elapsed = () => Date.now() - started
const log = (...a) => console.error(`[roundtrip +${elapsed()}ms]`, ...a)

const timer = setTimeout(() => {
  log(`timed out after ${timeoutMs} ms`)
  process.exit(3)
}, timeoutMs)

const kafka = new Kafka({
  clientId: `suoi-e2e-${mode}`,
  brokers: [bootstrap],
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  // kafkajs logs go to stderr (the test shows them when it fails); stdout is the summary only
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, label, log: entry }) => {
    const { message, ...rest } = entry
    console.error(`[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(rest)}`)
  }
})

const headerText = (headers) => {
  const out = {}
  for (const [k, v] of Object.entries(headers || {})) {
    out[k] = Array.isArray(v) ? v.map(String) : (v === undefined || v === null ? null : v.toString())
  }
  return out
}

async function createTopic (admin) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
    waitForLeaders: true,
    timeout: 5000
  })
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  const parts = meta.topics[0].partitions.map(p => ({ partition: p.partitionId, leader: p.leader, errorCode: p.partitionErrorCode }))
  parts.sort((a, b) => a.partition - b.partition)
  return { created, partitions: parts }
}

function message (i, phase) {
  return {
    key: `key-${i % 7}`,
    value: `${phase} value ${i} ` + 'x'.repeat(i % 13),
    headers: { idx: String(i), phase, src: 'kafkajs', multi: ['a', 'b'] }
  }
}

async function produce (producer, indices, phase, compression) {
  const acks = await producer.send({
    topic,
    acks: -1,
    compression: compression || CompressionTypes.None,
    messages: indices.map(i => message(i, phase))
  })
  return acks.map(a => ({ partition: a.partition, errorCode: a.errorCode, baseOffset: a.baseOffset }))
}

// Run one consumer in `groupId` until `want` messages arrived; commit explicitly; leave.
async function consume (want, label, groupId = group, readUncommitted = false) {
  const consumer = kafka.consumer({
    groupId,
    readUncommitted,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    retry: { retries: 3 }
  })
  const events = { joins: [], heartbeats: 0, commits: [], crashes: [] }
  consumer.on(consumer.events.GROUP_JOIN, e => {
    events.joins.push({
      groupId: e.payload.groupId,
      isLeader: e.payload.isLeader,
      memberId: e.payload.memberId,
      groupProtocol: e.payload.groupProtocol,
      assignment: e.payload.memberAssignment
    })
  })
  consumer.on(consumer.events.HEARTBEAT, () => { events.heartbeats++ })
  consumer.on(consumer.events.COMMIT_OFFSETS, e => { events.commits.push(e.payload.topics) })
  consumer.on(consumer.events.CRASH, e => { events.crashes.push(String(e.payload.error)) })

  const received = []
  let done
  const finished = new Promise((resolve) => { done = resolve })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic: t, partition, message: m }) => {
      received.push({
        topic: t,
        partition,
        offset: Number(m.offset),
        key: m.key === null ? null : m.key.toString(),
        value: m.value === null ? null : m.value.toString(),
        headers: headerText(m.headers),
        timestamp: Number(m.timestamp)
      })
      if (received.length >= want) done()
    }
  })
  await finished
  // let a few heartbeats go by, and make sure nothing more than `want` shows up
  await new Promise(resolve => setTimeout(resolve, 1200))
  const next = {}
  for (const r of received) next[r.partition] = Math.max(next[r.partition] ?? 0, r.offset + 1)
  const toCommit = Object.entries(next).map(([partition, offset]) => ({ topic, partition: Number(partition), offset: String(offset) }))
  await consumer.commitOffsets(toCommit)
  const described = await consumer.describeGroup()
  await consumer.disconnect()
  log(`${label}: ${received.length} messages, ${events.heartbeats} heartbeats`)
  return {
    received,
    committed: toCommit.map(c => ({ partition: c.partition, offset: Number(c.offset) })),
    events,
    describedGroup: {
      state: described.state,
      protocolType: described.protocolType,
      protocol: described.protocol,
      members: described.members.length
    }
  }
}

async function groupMode () {
  const admin = kafka.admin()
  await admin.connect()
  const topicInfo = await createTopic(admin)

  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const third = Math.ceil(count / 3)
  const idx = [...Array(count).keys()]
  const sends = [
    await produce(producer, idx.slice(0, third), 'first'),
    await produce(producer, idx.slice(third, 2 * third), 'first', CompressionTypes.GZIP),
    await produce(producer, idx.slice(2 * third), 'first')
  ]
  log(`produced ${count}`)
  const first = await consume(count, 'first consumer')

  const extraIdx = [...Array(extra).keys()].map(i => count + i)
  const extraSends = [await produce(producer, extraIdx, 'second')]
  await producer.disconnect()
  const second = await consume(extra, 'second consumer')

  const fetched = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  const groups = await admin.listGroups()
  await admin.disconnect()
  return {
    mode,
    topic: topicInfo,
    sends,
    extraSends,
    first,
    second,
    adminFetchedOffsets: fetched[0].partitions.map(p => ({ partition: p.partition, offset: Number(p.offset) }))
      .sort((a, b) => a.partition - b.partition),
    listedGroups: groups.groups.filter(g => g.groupId === group)
  }
}

async function txnMode () {
  const txnId = option('txn-id')
  const admin = kafka.admin()
  await admin.connect()
  const topicInfo = await createTopic(admin)
  await admin.disconnect()

  const producer = kafka.producer({
    transactionalId: txnId,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    // unlimited retries, as EoS wants; the whole run is still bounded by --timeout-ms
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 }
  })
  await producer.connect()
  const results = []
  const plan = [
    { name: 'committed-1', end: 'commit', offsets: 7 },
    { name: 'aborted', end: 'abort', offsets: 99 },
    { name: 'committed-2', end: 'commit', offsets: null }
  ]
  for (const step of plan) {
    const txn = await producer.transaction()
    const acks = []
    for (let p = 0; p < partitions; p++) {
      const r = await txn.send({
        topic,
        acks: -1,
        messages: [0, 1, 2].map(i => ({ partition: p, key: `k${i}`, value: `${step.name}-${p}-${i}`, headers: { txn: step.name } }))
      })
      acks.push(...r.map(a => ({ partition: a.partition, errorCode: a.errorCode, baseOffset: a.baseOffset })))
    }
    if (step.offsets !== null) {
      await txn.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic, partitions: [{ partition: 0, offset: String(step.offsets) }] }]
      })
    }
    if (step.end === 'commit') await txn.commit()
    else await txn.abort()
    results.push({ name: step.name, end: step.end, acks })
    log(`transaction ${step.name}: ${step.end}`)
  }
  await producer.disconnect()
  // kafkajs' own consumers: read_committed (its default) skips the aborted records,
  // read_uncommitted sees them all; neither ever gets a control record
  const perTxn = 3 * partitions
  const readCommitted = await consume(2 * perTxn, 'read_committed consumer', `${group}-rc`, false)
  const readUncommitted = await consume(3 * perTxn, 'read_uncommitted consumer', `${group}-ru`, true)
  return { mode, topic: topicInfo, transactions: results, readCommitted, readUncommitted }
}

async function main () {
  const summary = mode === 'txn' ? await txnMode() : await groupMode()
  summary.elapsedMs = elapsed()
  clearTimeout(timer)
  process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(0))
}

main().catch(err => {
  log('FAILED:', err && err.stack ? err.stack : err, err && err.type ? `type=${err.type}` : '')
  process.exit(1)
})
