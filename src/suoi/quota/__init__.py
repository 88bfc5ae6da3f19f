"""Client quotas (KIP-546), sans-IO: the rate sampler and the quota lookup (see README.md)."""

from suoi.quota.connections import Admission, ConnectionLimits, listener_connection_limits, parse_overrides
from suoi.quota.manager import QUOTA_KINDS, ClientQuotas, quota_for
from suoi.quota.sampler import Rate, TokenBucket

__all__ = ["QUOTA_KINDS", "Admission", "ClientQuotas", "ConnectionLimits", "Rate", "TokenBucket", "listener_connection_limits",
           "parse_overrides", "quota_for"]
