"""HTTP apps that sit beside `suoi.api` on a node's event loop: admin/metrics, schema registry, console."""
