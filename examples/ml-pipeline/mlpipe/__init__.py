"""suoi's real-time ML pipeline example (the seed's section 6): ingest -> preprocessors ->
feature-generators -> ml-models (train / serve) -> api-servers, all plain confluent-kafka code."""
