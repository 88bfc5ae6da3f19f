"""The classic consumer-group protocol as a sans-IO state machine.

`GroupStateMachine` owns every classic group of one coordinator. Each event method takes a
request (with the runtime's opaque `token`) and the current time in ms and returns a list
of outputs: `Reply` for that request or for requests parked earlier, and `PersistGroup`
effects the runtime must append *before* sending the replies of the same list. Parked
JoinGroup/SyncGroup requests are answered later by another event or by `poll(now_ms)`,
which fires due timers. Event methods never fire timers themselves: the runtime calls
`poll(now)` whenever `next_deadline()` <= now (calling it after every event is fine).

Every parked token is answered exactly once; a parked request that Kafka would silently
drop (a superseded JoinGroup/SyncGroup from the same member, a removed member's SyncGroup)
is answered with an error instead.

Semantics follow Apache Kafka's classic group coordinator (GroupMetadataManager /
ClassicGroup). The parts, by responsibility: `core` (groups, timers and their keys, the
rebalance transitions, `poll`), `membership` (JoinGroup, LeaveGroup), `sync_heartbeat`
(SyncGroup, Heartbeat), `admin` (offset validation, delete/describe/list, restore/unload).
Not thread-safe: one caller at a time.
"""

from __future__ import annotations

from .admin import GroupAdmin
from .core import GroupMachineCore
from .membership import ADMIN_LEAVE_MEMBER_IDS, MembershipEvents
from .sync_heartbeat import SyncHeartbeatEvents

__all__ = ["ADMIN_LEAVE_MEMBER_IDS", "GroupMachineCore", "GroupStateMachine"]


class GroupStateMachine(MembershipEvents, SyncHeartbeatEvents, GroupAdmin):
    """Every classic group of one coordinator; see the module docstring for the contract.

    `GroupStateMachine(config, *, new_member_id=None)`: `new_member_id(prefix)` makes member
    ids; prefix is the group instance id or client id."""
