"""KRaft mode: a broker that is part of a cluster (metadata quorum, controller, registration)."""
