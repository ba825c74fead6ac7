"""Sharing to the Hub is off by default, guarded offline and without a token, and never writes the token."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest

import kit.export.share
from kit.export.share import hub_token, push_to_hub

SECRET = "hf_test_secret_do_not_write_0123456789"


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    folder = tmp_path / "adapter"
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    (folder / "checkpoint-2" / "optimizer.pt").write_bytes(b"\0")
    return folder


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


class FakeApi:
    """Records what HfApi was asked to do; nothing leaves the machine."""

    instances: ClassVar[list[FakeApi]] = []

    def __init__(self, token=None):
        self.token, self.calls = token, []
        FakeApi.instances.append(self)

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))
        return f"https://huggingface.co/{kwargs['repo_id']}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))

    def upload_file(self, **kwargs):
        self.calls.append(("upload_file", kwargs))


def _no_secret_on_disk(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), f"token written to {path}"


def test_off_by_default(adapter: Path, capsys) -> None:
    assert push_to_hub(None, adapter) is None and push_to_hub("", adapter) is None
    assert capsys.readouterr().out == ""


def test_offline_is_one_line(adapter: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    FakeApi.instances = []
    assert push_to_hub("me/tiny-adapter", adapter) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "HF_HUB_OFFLINE" in out and SECRET not in out
    assert FakeApi.instances == []


def test_no_token_is_one_line(adapter: Path, monkeypatch, capsys, no_token) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert hub_token() is None
    assert push_to_hub("me/tiny-adapter", adapter) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "HF_TOKEN" in out


def test_colab_secret_is_used(monkeypatch, no_token) -> None:
    colab = types.ModuleType("google.colab")
    colab.userdata = types.SimpleNamespace(get=lambda name: SECRET if name == "HF_TOKEN" else None)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert hub_token() == SECRET

    def denied(name):
        raise RuntimeError("NotebookAccessError: access not granted")

    colab.userdata = types.SimpleNamespace(get=denied)
    assert hub_token() is None


def test_push_with_a_fake_hub(adapter: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    FakeApi.instances = []
    merged = tmp_path / "merged_16bit"
    merged.mkdir()
    (merged / "model.safetensors").write_bytes(b"\0")
    gguf = tmp_path / "model-q4_k_m.gguf"
    gguf.write_bytes(b"GGUF")
    pushed = push_to_hub("me/tiny-adapter", adapter, merged_dir=merged, gguf_files=[str(gguf)])
    assert pushed is not None and pushed.url.endswith("me/tiny-adapter")
    (api,) = FakeApi.instances
    assert api.token == SECRET  # in memory only
    kinds = [name for name, _ in api.calls]
    assert kinds == ["create_repo", "upload_folder", "upload_folder", "upload_file"]
    assert api.calls[0][1]["private"] is True
    assert api.calls[1][1]["path_in_repo"] is None and "checkpoint-*" in api.calls[1][1]["ignore_patterns"]
    assert api.calls[2][1]["path_in_repo"] == "merged"
    assert api.calls[3][1]["path_in_repo"] == "gguf/model-q4_k_m.gguf"
    out = capsys.readouterr().out
    assert "pushed to" in out and SECRET not in out
    _no_secret_on_disk(tmp_path)


def test_a_failing_upload_does_not_crash(adapter: Path, monkeypatch, capsys) -> None:
    class Unreachable(FakeApi):
        def create_repo(self, **kwargs):
            raise ConnectionError("Failed to resolve 'huggingface.co'\nmore detail")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr("huggingface_hub.HfApi", Unreachable)
    assert push_to_hub("me/tiny-adapter", adapter) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "ConnectionError" in out and SECRET not in out


def test_real_client_with_the_hub_unreachable(adapter: Path, monkeypatch, capsys) -> None:
    """The real HfApi, no fake: HF_HUB_OFFLINE=1 means no request is even tried."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert kit.export.share.push_to_hub("me/tiny-adapter", adapter) is None
    assert "HF_HUB_OFFLINE" in capsys.readouterr().out
