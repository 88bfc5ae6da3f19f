"""The asyncio shell: listeners and connections. Moves bytes only; all meaning lives in
`protocol` (framing) and `api` (dispatch)."""
