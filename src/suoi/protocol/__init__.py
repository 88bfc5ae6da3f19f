"""Sans-IO protocol layer: framing, header/body codecs through kio, record batch headers.

Owns bytes <-> typed messages. Must not import asyncio, sockets, or any other suoi
package except `suoi.model`.
"""
