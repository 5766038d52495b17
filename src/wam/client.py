"""`from wam.client import PolicyClient`: the remote policy (see wam.serve.client)."""

from wam.serve.client import PolicyClient, RemoteError

__all__ = ["PolicyClient", "RemoteError"]
