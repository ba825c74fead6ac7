"""Push a trained adapter (and the merged model and GGUF files, where made) to the Hugging Face Hub; off by default.

The token comes from the environment (``HF_TOKEN``) or from Colab's secrets (``HF_TOKEN`` in the key panel) and
is handed to ``HfApi`` in memory only: nothing here calls ``login()`` or writes it to a file. Offline
(``HF_HUB_OFFLINE=1``), without a token, or when the upload fails, :func:`push_to_hub` prints one line and
returns None: a finished training run is never lost to a sharing step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# Never uploaded from an adapter folder: resumable checkpoints (optimizer state), TensorBoard runs, caches.
IGNORE = ["checkpoint-*", "checkpoint-*/**", "runs/**", "**/__pycache__/**", "*.pt", "*.pth"]


def hub_token() -> str | None:
    """The Hub token from ``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``), else Colab's secret ``HF_TOKEN``; else None."""
    for name in TOKEN_NAMES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        value = userdata.get("HF_TOKEN")
    except Exception:  # SecretNotFoundError, NotebookAccessError (access not granted): no token, not a crash
        return None
    return str(value).strip() or None


def hub_offline() -> bool:
    """True when the Hub is switched off for this process (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Pushed:
    """What was uploaded: the repository, its URL and the folders/files sent, with their place in the repo."""

    repo_id: str
    url: str
    uploads: list[tuple[str, str]] = field(default_factory=list)  # (local path, path in repo)


def push_to_hub(
    hub_repo: str | None,
    adapter_dir: str | os.PathLike[str],
    *,
    merged_dir: str | os.PathLike[str] | None = None,
    gguf_files: list[str] | tuple[str, ...] = (),
    private: bool = True,
    commit_message: str = "Upload from unsloth-notebook-kit",
) -> Pushed | None:
    """Upload ``adapter_dir`` to the root of ``hub_repo`` (so ``PeftModel.from_pretrained(hub_repo)`` works), the
    merged model to ``merged/`` and GGUF files to ``gguf/``. ``hub_repo`` None or empty: nothing, silently.

    The repository is created private unless ``private=False``. Returns :class:`Pushed`, or None with one line
    saying why nothing was pushed.
    """
    if not hub_repo:
        return None
    if hub_offline():
        print(f"[share] HF_HUB_OFFLINE is set: not pushing to {hub_repo} (unset it to upload)")
        return None
    token = hub_token()
    if token is None:
        print(f"[share] no Hugging Face token: not pushing to {hub_repo}. Set HF_TOKEN, or on Colab add HF_TOKEN "
              "to the secrets (key icon) and allow this notebook access")
        return None
    uploads = [(str(adapter_dir), "")]
    if merged_dir:
        uploads.append((str(merged_dir), "merged"))
    uploads += [(str(f), f"gguf/{Path(f).name}") for f in gguf_files]
    missing = [local for local, _ in uploads if not Path(local).exists()]
    if missing:
        print(f"[share] not pushing to {hub_repo}: {', '.join(missing)} not found")
        return None
    try:
        return _upload(hub_repo, token, uploads, private, commit_message)
    except Exception as exc:  # network, auth, permissions: one line, the run's results stay on disk
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"[share] push to {hub_repo} failed ({type(exc).__name__}: {message[:200]}); the files stay in "
              f"{adapter_dir}")
        return None


def _upload(repo_id: str, token: str, uploads: list[tuple[str, str]], private: bool, message: str) -> Pushed:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = str(api.create_repo(repo_id=repo_id, private=private, exist_ok=True))
    for local, in_repo in uploads:
        if Path(local).is_dir():
            api.upload_folder(folder_path=local, repo_id=repo_id, path_in_repo=in_repo or None,
                              ignore_patterns=IGNORE, commit_message=message)
        else:
            api.upload_file(path_or_fileobj=local, path_in_repo=in_repo, repo_id=repo_id, commit_message=message)
    print(f"[share] pushed to {url}: " + ", ".join(in_repo or "adapter" for _, in_repo in uploads))
    return Pushed(repo_id, url, uploads)

