"""Avro schemas of the two event topics, registered through the schema registry by confluent-kafka's
AvroSerializer (subjects raw-user-events-value and processed-events-value). The raw schema is loose on
purpose (event_type and category are strings): checking them is the preprocessors' job."""

import json

RAW_EVENT = json.dumps({
    "type": "record", "name": "UserEvent", "namespace": "suoi.examples.ml",
    "doc": "One user interaction as an app reports it.",
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "user_id", "type": "string"},
        {"name": "event_type", "type": "string", "doc": "view, click, add_to_cart or purchase"},
        {"name": "item_id", "type": "string"},
        {"name": "category", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "ts_ms", "type": "long", "doc": "event time, ms since the epoch"},
    ],
})

PROCESSED_EVENT = json.dumps({
    "type": "record", "name": "ProcessedEvent", "namespace": "suoi.examples.ml",
    "doc": "A validated, cleaned user event with its session.",
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "user_id", "type": "string"},
        {"name": "event_type", "type": {"type": "enum", "name": "EventType",
                                        "symbols": ["view", "click", "add_to_cart", "purchase"]}},
        {"name": "item_id", "type": "string"},
        {"name": "category", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "ts_ms", "type": "long"},
        {"name": "session_id", "type": "string", "doc": "user_id:first ts of the session (30 min gap)"},
    ],
})
