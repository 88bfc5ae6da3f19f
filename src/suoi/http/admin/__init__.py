"""The admin endpoint of a node: Prometheus metrics, health and small JSON views (issue 15).

`MetricsRecorder` is the sans-IO counter object the broker owns and the request path bumps;
`AdminServer` serves `/metrics` and `/v1/...` on the node's loop; `node_view` is the only
module that reads broker internals. See README.md in this package's parent.
"""

from suoi.http.admin.settings import AdminSettingError, AdminSettings
from suoi.metrics_recorder import MetricsRecorder

__all__ = ["AdminSettingError", "AdminSettings", "MetricsRecorder"]
