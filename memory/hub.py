"""Cheap questions about the Hugging Face hub, asked before any model is loaded: is it reachable,
and is a repository's file already in the local cache."""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

TRUTHY = ("1", "true", "yes", "on")


def offline() -> bool:
    """Whether the user asked for no hub access (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUTHY


@functools.cache
def hub_reachable(timeout_seconds: float = 3.0) -> bool:
    """One TCP connection to the hub's host, so a machine without network learns it in seconds,
    not after minutes of retried downloads."""
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def hub_usable() -> bool:
    """False when offline or the hub cannot be reached; then only cached files can be used."""
    return not offline() and hub_reachable()


def cached_file(repo_id: str, *filenames: str) -> bool:
    """Whether any of ``filenames`` from the hub repository ``repo_id`` is in the local cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in filenames)
    except ValueError:  # not a valid repository id
        return False
