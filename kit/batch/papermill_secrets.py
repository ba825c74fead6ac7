"""Secret notebook parameters (``hf_token``, ``wandb_api_key``...) reach the kernel through the environment only.

The batch writes such a parameter into ``parameters.yaml`` as a marker (``kit-secret-env:KIT_SECRET_PARAM_HF_TOKEN``)
and puts its value in that environment variable; ``python -m kit.batch.papermill_secrets`` is papermill with a
Python translator that injects the marker as ``os.environ.get(...)``. So the value is in no file the batch or
papermill writes (parameters file, executed notebook, its papermill metadata, the log), yet the notebook gets it.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from kit.runtime.redact import is_secret_name

MARKER = "kit-secret-env:"


def env_name(parameter: str) -> str:
    """The environment variable that carries secret parameter ``parameter``: ``KIT_SECRET_PARAM_HF_TOKEN``."""
    return "KIT_SECRET_PARAM_" + re.sub(r"\W", "_", parameter).upper()


def split_secrets(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(parameters with each non-empty secret string replaced by its marker, {env name: value})."""
    out, env = dict(parameters), {}
    for name, value in parameters.items():
        if isinstance(value, str) and value and not value.startswith(MARKER) and is_secret_name(name):
            env[env_name(name)] = value
            out[name] = MARKER + env_name(name)
    return out, env


def resolve(parameters: dict[str, Any]) -> dict[str, Any]:
    """Markers replaced by their environment values (for launchers that pass parameters another way)."""
    return {k: os.environ.get(v[len(MARKER):], "") if isinstance(v, str) and v.startswith(MARKER) else v
            for k, v in parameters.items()}


def main() -> None:
    """papermill's command line, with the marker-aware Python translator registered."""
    from papermill.cli import papermill
    from papermill.translators import PythonTranslator, papermill_translators

    class SecretTranslator(PythonTranslator):
        @classmethod
        def translate_str(cls, val: str) -> str:
            if val.startswith(MARKER) and re.fullmatch(r"\w+", val[len(MARKER):]):
                return f'__import__("os").environ.get({val[len(MARKER):]!r}, "")'
            return super().translate_str(val)

    papermill_translators.register("python", SecretTranslator)
    sys.exit(papermill(prog_name="papermill"))


if __name__ == "__main__":
    main()
