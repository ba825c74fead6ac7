"""The one redactor every writer uses: secrets are found by name AND by value, and never reach a file.

- **By name**: a variable or parameter called ``HF_TOKEN``, ``wandb_api_key``, ``DB_PASSWORD``, ``GITLAB_PAT``,
  ``AWS_SECRET_ACCESS_KEY``, ``MY_SERVICE_SECRET``... (a name part ending in TOKEN, KEY, SECRET, PASSWORD, PASS,
  PAT, ACCESS, CREDENTIALS, AUTH, COOKIE, SESSION) has its value replaced by ``<redacted>``.
- **By value**: known token shapes (``hf_...``, ``ghp_...``/``github_pat_...``, ``glpat-...``, ``sk-...``,
  ``xox?-...``, ``AKIA...``, JWTs) and the password inside a URL (``scheme://user:PASSWORD@host``) are replaced
  wherever they appear in text; so are the values of secret-named environment variables of this process and
  any value passed to :func:`redact` as ``secrets`` (a plan's secret env values, secret parameters).

Used by the batch manifests and summaries, ``metrics.json`` and the parameters files the batch writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "<redacted>"
# A name part (split at _ . -) ending in one of these marks a secret (TOKENIZERS_PARALLELISM is not one).
_SECRET_PART = re.compile(
    r"(TOKEN|KEYS?|SECRETS?|PASSWORDS?|PASSWD|PASS|PWD|PATS?|ACCESS|CREDENTIALS?|AUTH|COOKIES?|SESSION|APIKEY)$"
)
# Name parts before TOKEN/KEY that make an ordinary setting (eos_token, loss_key), not a secret.
_HARMLESS_BEFORE = frozenset({"EOS", "BOS", "PAD", "UNK", "SEP", "CLS", "MASK", "SPECIAL", "NEW", "MAX", "NUM",
                              "LOSS", "SORT", "TEXT", "PRIMARY", "DATASET", "CACHE", "METRIC", "GROUP", "LABEL"})
_SECRET_NAMES = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_API_TOKEN",
                           "WANDB_API_KEY", "WANDB_KEY", "WANDB_TOKEN"})
# PWD and OLDPWD are the shell's working folders, not passwords: redacting them blanks every path in every message.
_NOT_SECRET = frozenset({"TOKENIZERS_PARALLELISM", "PASSTHROUGH", "KEYBOARD", "PWD", "OLDPWD"})
# Token shapes of the services a training kit meets; long enough that ordinary words never match.
TOKEN_SHAPES = re.compile(
    r"\bhf_[A-Za-z0-9]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bglpat-[A-Za-z0-9_\-]{16,}"
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
)
# scheme://user:password@host -> scheme://user:<redacted>@host (pip, git, databases, MLflow, proxies).
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)([^/\s@]+)(@)")
_MIN_SECRET = 6  # shorter "secrets" (SESSION=1) would blank ordinary text


def is_secret_name(name: Any) -> bool:
    """True for variable/parameter names whose values must never be written (tokens, keys, passwords)."""
    upper = str(name).upper()
    if upper in _NOT_SECRET:
        return False
    if upper in _SECRET_NAMES:
        return True
    parts = [part for part in re.split(r"[_.\-\s]+", upper) if part]
    for position, part in enumerate(parts):
        if _SECRET_PART.search(part):
            before = parts[position - 1] if position else ""
            if part in ("TOKEN", "KEY") and before in _HARMLESS_BEFORE:
                continue
            return True
    return False


def is_secret_entry(name: Any, value: Any) -> bool:
    """True when an environment entry must not be stored in clear: a secret name, or a value holding a secret
    (a token shape, a URL with a password, a value :func:`remember_secrets` was told about)."""
    return is_secret_name(name) or (isinstance(value, str) and redact_text(value, _REMEMBERED) != value)


_REMEMBERED: set[str] = set()


def remember_secrets(values: Iterable[str]) -> None:
    """Add secret values (a plan's secret env values and parameters) that every later :func:`redact` replaces."""
    _REMEMBERED.update(v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET and v != REDACTED)


def url_passwords(text: str) -> list[str]:
    """The passwords inside URLs in ``text`` (``https://user:PASSWORD@host``)."""
    return [m.group(2) for m in _URL_PASSWORD.finditer(text)]


def environment_secrets(env: dict[str, Any] | None = None) -> set[str]:
    """Secret values of an environment (default ``os.environ``): secret-named values and URL passwords."""
    found: set[str] = set()
    for name, value in (os.environ if env is None else env).items():
        if not isinstance(value, str):
            value = str(value)
        if is_secret_name(name) and len(value) >= _MIN_SECRET:
            found.add(value)
        found.update(p for p in url_passwords(value) if len(p) >= _MIN_SECRET and p != REDACTED)
    return found


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with token shapes, URL passwords and each of ``secrets`` replaced by ``<redacted>``."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3) if m.group(2) != REDACTED else m.group(0),
                             text)
    return TOKEN_SHAPES.sub(REDACTED, text)


def redact(value: Any, secrets: Iterable[str] | None = None, *, by_name: bool = True) -> Any:
    """A copy of ``value`` (mappings, lists, strings at any depth) with every secret replaced (module doc).

    ``secrets`` adds known secret values to the ones of this process's environment. With ``by_name``, a
    mapping entry whose key is a secret name (:func:`is_secret_name`) has a non-empty value replaced whole.
    """
    known = environment_secrets() | _REMEMBERED | set(secrets or ())
    return _redact(value, known, by_name)


def _redact(value: Any, known: set[str], by_name: bool) -> Any:
    if isinstance(value, str):
        return redact_text(value, known)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if by_name and isinstance(item, str) and item not in ("", REDACTED) and is_secret_name(key):
                out[key] = REDACTED
            else:
                out[key] = _redact(item, known, by_name)
        return out
    if isinstance(value, list | tuple):
        return [_redact(item, known, by_name) for item in value]
    return value


def redact_env(env: dict[str, Any] | None) -> dict[str, Any]:
    """``env`` with every secret-named value replaced by ``<redacted>`` and other values redacted by value."""
    return redact(dict(env or {}), secrets=environment_secrets(env or {}))


def secret_values(mapping: dict[str, Any] | None) -> set[str]:
    """The string values of ``mapping``'s secret-named entries (parameters such as ``hf_token``), to redact by value."""
    return {str(v) for k, v in (mapping or {}).items() if is_secret_name(k) and isinstance(v, str | int) and
            not isinstance(v, bool) and len(str(v)) >= _MIN_SECRET}
