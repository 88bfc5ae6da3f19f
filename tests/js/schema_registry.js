#!/usr/bin/env node
// @kafkajs/confluent-schema-registry (the npm client) against suoi's schema registry; driven by
// tests/e2e/test_schema_registry.py.
//
//   node schema_registry.js --bootstrap HOST:PORT --registry URL --topic T [--python-topic P]
//
// Registers an Avro schema (subject T-value), encodes two records with it, produces them with
// kafkajs, consumes them back and decodes them; with --python-topic also decodes the first
// record confluent-kafka's AvroSerializer wrote there. Prints one JSON summary on stdout.

'use strict'

const { Kafka, logLevel, Partitioners } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

function option (name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1]
  if (fallback === undefined) throw new Error(`missing --${name}`)
  return fallback
}

const bootstrap = option('bootstrap')
const topic = option('topic')
const pythonTopic = option('python-topic', '')
const registry = new SchemaRegistry({ host: option('registry') })
const kafka = new Kafka({ clientId: 'suoi-js-registry', brokers: [bootstrap], logLevel: logLevel.NOTHING })

async function readAll (name, count) {
  const consumer = kafka.consumer({ groupId: `js-registry-${name}-${Date.now()}` })
  const out = []
  await consumer.connect()
  await consumer.subscribe({ topic: name, fromBeginning: true })
  await new Promise((resolve, reject) => {
    consumer.run({ eachMessage: async ({ message }) => {
      out.push(message.value)
      if (out.length === count) resolve()
    } }).catch(reject)
  })
  await consumer.disconnect()
  return out
}

async function main () {
  const schema = JSON.stringify({ type: 'record', name: 'Reading', namespace: 'js',
    fields: [{ name: 'sensor', type: 'string' }, { name: 'value', type: 'double' }] })
  const { id } = await registry.register({ type: SchemaType.AVRO, schema }, { subject: `${topic}-value` })
  const again = await registry.register({ type: SchemaType.AVRO, schema }, { subject: `${topic}-value` })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  await admin.disconnect()
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const readings = [{ sensor: 'a', value: 1.5 }, { sensor: 'b', value: -2 }]
  await producer.send({ topic, messages: await Promise.all(readings.map(async r => ({ value: await registry.encode(id, r) }))) })
  await producer.disconnect()
  const decoded = await Promise.all((await readAll(topic, readings.length)).map(v => registry.decode(v)))
  const summary = { id, again: again.id, decoded, latest: await registry.getLatestSchemaId(`${topic}-value`) }
  if (pythonTopic) summary.python = await registry.decode((await readAll(pythonTopic, 1))[0])
  process.stdout.write(JSON.stringify(summary) + '\n')
}

const timer = setTimeout(() => { process.stderr.write('timed out\n'); process.exit(2) }, 18000)
main().then(() => { clearTimeout(timer); process.exit(0) }, err => { process.stderr.write(`${err.stack || err}\n`); process.exit(1) })
