"""Serving a trained policy to a robot process: `server` (`wam serve`), `client` (`PolicyClient`),
`protocol` (msgpack messages with numpy buffers, never pickle) and `chunking` (the client's action
queue: asynchronous requests, blending, real-time chunking)."""
