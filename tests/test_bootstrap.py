"""The fresh-machine entry point runs before anything is installed: standard library only, CPU-safe pins."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


ROOT = Path(__file__).resolve().parent.parent
CUDA_ONLY = {"torchvision", "triton", "xformers", "bitsandbytes", "torchao", "cut_cross_entropy"}


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_bootstrap_and_package_init_use_only_the_standard_library() -> None:
    # kit/__init__.py may import kit.runtime.headless, itself standard library only (it runs before anything is installed);
    # so does the install cell's second stage (kit.notebooks.install), which runs with nothing but the kit installed.
    for path in (ROOT / "kit" / "bootstrap.py", ROOT / "kit" / "__init__.py", ROOT / "kit" / "runtime" / "__init__.py",
                 ROOT / "kit" / "runtime" / "headless.py", ROOT / "kit" / "notebooks" / "__init__.py",
                 ROOT / "kit" / "notebooks" / "install.py", ROOT / "kit" / "paths.py", ROOT / "kit" / "errors.py"):
        outside = {n for n in _top_level_imports(path)
                   if n not in sys.stdlib_module_names and n not in {"__future__", "kit"}}
        assert outside == set(), f"{path.name} imports {outside}"


def test_cuda_only_packages_stay_in_the_gpu_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    def names(requirements: list[str]) -> set[str]:
        return {r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].split("!")[0].strip().lower()
                for r in requirements}
    assert names(project["dependencies"]) & CUDA_ONLY == set()
    assert names(project["optional-dependencies"]["dev"]) & CUDA_ONLY == set()
    gpu = names(project["optional-dependencies"]["gpu"]) | names(project["optional-dependencies"]["gpu-core"])
    assert {"bitsandbytes", "xformers", "triton"} <= gpu
    pins = {r.replace(" ", "") for r in project["dependencies"]}
    assert {"transformers==5.17.0", "trl==1.15.0", "peft==0.21.2", "datasets==4.8.5", "accelerate==1.15.0",
            "papermill==2.7.0"} <= pins


def test_unsloth_is_installed_without_its_dependencies() -> None:
    lines = [line.strip() for line in (ROOT / "requirements-unsloth.txt").read_text(encoding="utf-8").splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == ["unsloth==2026.10.9", "unsloth_zoo==2026.10.9"]
    source = (ROOT / "kit" / "bootstrap.py").read_text(encoding="utf-8")
    assert '"--no-deps", "-r", "requirements-unsloth.txt"' in source and 'CPU_TORCH = "torch==2.13.0"' in source
