"""Client quotas (KIP-546), sans-IO: the rate sampler and the quota lookup (see README.md)."""

from suoi.quota.connections import ConnectionLimits, parse_overrides
from suoi.quota.manager import QUOTA_KINDS, ClientQuotas, quota_for
from suoi.quota.sampler import Rate, TokenBucket

__all__ = ["QUOTA_KINDS", "ClientQuotas", "ConnectionLimits", "Rate", "TokenBucket", "parse_overrides", "quota_for"]
