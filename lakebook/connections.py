"""Named connections: settings from `c.Lakebook.connections`, secrets from the environment.

A connection is a dict. Any key ending in `_env` names an environment variable; the resolved
connection holds its value under the key without the suffix (`password_env: PG_PASSWORD` gives
`password`). Secrets are resolved inside the job's kernel, so they never become papermill
parameters and never reach a pipeline file, a run record or a log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lakebook.errors import ConnectionNotFoundError

ENV_SUFFIX = "_env"


def resolve_connection(connections: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The named connection with every `*_env` key replaced by its environment value."""
    if name not in connections:
        known = ", ".join(f"`{key}`" for key in sorted(connections)) or "none"
        raise ConnectionNotFoundError(
            f"Connection `{name}` is not defined. Known connections: {known}. "
            "Add it to `c.Lakebook.connections` in jupyter_config.py."
        )
    resolved: dict[str, Any] = {}
    for key, value in dict(connections[name]).items():
        if key.endswith(ENV_SUFFIX):
            variable = str(value)
            if variable not in os.environ:
                raise ConnectionNotFoundError(
                    f"Connection `{name}` reads `{key[: -len(ENV_SUFFIX)]}` from the environment "
                    f"variable `{variable}`, which is not set. Export it before running."
                )
            resolved[key[: -len(ENV_SUFFIX)]] = os.environ[variable]
        else:
            resolved[key] = value
    return resolved
