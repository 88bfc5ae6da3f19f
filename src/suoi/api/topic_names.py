"""Topic names Kafka would never create, refused with one log line per name.

Below both `topics` (lookups with auto-creation) and `cluster_metadata` (Metadata and the
auto-creation it asks the controller for): each refuses such names, and the log line for a
name is written once, however often clients retry their Metadata requests (bounded memory).
"""

from __future__ import annotations

import logging

from suoi.controller.errors import ApiError
from suoi.controller.topics import validate_topic_name

log = logging.getLogger("suoi.api")
_LOGGED_REFUSALS: dict[str, None] = {}  # insertion-ordered, bounded: names whose refusal was logged
_MAX_LOGGED_REFUSALS = 1024


def log_refusal_once(name: str, reason: str) -> None:
    """One log line per refused topic name (bounded memory), however often clients retry."""
    if name in _LOGGED_REFUSALS:
        return
    if len(_LOGGED_REFUSALS) >= _MAX_LOGGED_REFUSALS:
        _LOGGED_REFUSALS.pop(next(iter(_LOGGED_REFUSALS)))
    _LOGGED_REFUSALS[name] = None
    log.warning("topic %r refused: %s", name, reason)


#: Kafka's Topic.INTERNAL_TOPICS: the topics Metadata and DescribeTopicPartitions flag
#: ``is_internal``. A user topic whose name merely starts with "__" is not one.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


def invalid_topic_name(name: str) -> bool:
    """True (and the reason logged once) when Kafka would refuse to create a topic of this name."""
    try:
        validate_topic_name(name)
    except ApiError as exc:
        log_refusal_once(name, exc.message)
        return True
    return False
