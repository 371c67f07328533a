"""The Hugging Face token, as the steps find it: a ZenML secret, else the environment."""

from __future__ import annotations

import os

from zenml.client import Client

from trainer.config import HF_TOKEN_KEY


def hub_token(secret_name: str) -> str | None:
    """HF_TOKEN of the named ZenML secret; else the env var `@step(secrets=[...])` sets
    (or the user exported); None when neither has one."""
    try:
        token = Client().get_secret(secret_name).secret_values.get(HF_TOKEN_KEY)
    except KeyError:
        token = None
    return token or os.environ.get(HF_TOKEN_KEY) or None
