"""The partition layer: `Partition` (one hosted replica) and the replica manager around it (README.md)."""
