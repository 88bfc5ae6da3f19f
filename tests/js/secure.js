#!/usr/bin/env node
// kafkajs over SASL_SSL (SCRAM-SHA-512) against a suoi broker; driven by tests/e2e/test_security.py.
//   SUOI_BOOTSTRAP=H:P SUOI_CA=ca.pem SUOI_USER=alice SUOI_PASSWORD=... SUOI_TOPIC=t node secure.js
// Produces three messages, reads them back in a consumer group, prints {"values": [...]}.
'use strict'

const fs = require('fs')
const { Kafka, logLevel, Partitioners } = require('kafkajs')

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`missing ${name}`)
  return v
}
const timer = setTimeout(() => { console.error('timed out'); process.exit(3) }, 18000)

async function main () {
  const kafka = new Kafka({
    clientId: 'suoi-e2e-secure',
    brokers: [env('SUOI_BOOTSTRAP')],
    ssl: { ca: [fs.readFileSync(env('SUOI_CA'), 'utf-8')] },
    sasl: { mechanism: 'scram-sha-512', username: env('SUOI_USER'), password: env('SUOI_PASSWORD') },
    connectionTimeout: 3000,
    logLevel: logLevel.WARN
  })
  const topic = env('SUOI_TOPIC')
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: `${topic}-readers` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const values = []
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString())
        if (values.length === 3) resolve()
      }
    })
  })
  await consumer.disconnect()
  console.log(JSON.stringify({ values }))
  clearTimeout(timer)
}

main().catch((e) => { console.error(e); process.exit(1) })
