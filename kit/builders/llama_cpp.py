"""Build llama.cpp offline from the ``llama-cpp-python`` source distribution, once per machine (``kit llama-cpp``).

The 77 MB sdist on PyPI carries the whole llama.cpp tree under ``vendor/llama.cpp``: ``convert_hf_to_gguf.py``,
``gguf-py`` and ``tools/quantize``. This module downloads it with pip (registry only; a cached copy is reused),
builds ``llama-quantize`` and the shared ``libllama`` with cmake, and keeps llama-cpp-python's low-level ctypes
bindings of that same tree next to them, so Python can run a GGUF with greedy decoding and read its logits
(:mod:`kit.export.gguf_runtime`). Everything lives in a cache outside the repository: ``$KIT_LLAMA_CPP_DIR``, else
``~/.cache/unsloth-notebook-kit/llama.cpp-0.3.36``. Unsloth is pointed at ``<cache>/src/vendor/llama.cpp``
(``UNSLOTH_LLAMA_CPP_PATH``), where the built quantizer is linked beside the converter as Unsloth expects.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError, RunFailed

VERSION = "0.3.36"
REQUIREMENT = f"llama-cpp-python=={VERSION}"
SDIST_NAME = f"llama_cpp_python-{VERSION}.tar.gz"
INFO_FILE = "kit_llama_cpp.json"
TARGETS = ("llama-quantize", "llama")
# The ctypes bindings only: llama_cpp/__init__.py imports the high-level Llama class, which needs diskcache.
BINDING_FILES = ("llama_cpp.py", "_ctypes_extensions.py", "_ggml.py")
CMAKE_OPTIONS = ("-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DBUILD_SHARED_LIBS=ON",
                 "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF")
TOOLS_FIX = "apt-get install cmake g++ (or your system's cmake and C++ compiler), then run kit llama-cpp again"


def default_dir() -> Path:
    """The build cache: ``$KIT_LLAMA_CPP_DIR``, else ``~/.cache/unsloth-notebook-kit/llama.cpp-<version>``."""
    env = os.environ.get("KIT_LLAMA_CPP_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "unsloth-notebook-kit" / f"llama.cpp-{VERSION}"


@dataclass(frozen=True)
class LlamaCppBuild:
    """A finished build: where its pieces are and how long it took."""

    root: Path
    seconds: float
    cached: bool = False

    @property
    def llama_cpp(self) -> Path:
        """The llama.cpp tree Unsloth uses: converter, ``gguf-py`` and the linked ``llama-quantize``."""
        return self.root / "src" / "vendor" / "llama.cpp"

    @property
    def converter(self) -> Path:
        return self.llama_cpp / "convert_hf_to_gguf.py"

    @property
    def quantize(self) -> Path:
        return self.root / "build" / "bin" / "llama-quantize"

    @property
    def lib_dir(self) -> Path:
        """Where ``libllama.so`` and the ggml libraries are."""
        return self.root / "build" / "bin"

    @property
    def python_dir(self) -> Path:
        """Put on ``sys.path`` to import the ``llama_cpp`` ctypes bindings of this build."""
        return self.root / "python"

    def pieces(self) -> list[Path]:
        return [self.converter, self.quantize, self.llama_cpp / "llama-quantize", self.lib_dir / "libllama.so",
                self.python_dir / "llama_cpp" / "llama_cpp.py"]


def find_build(root: str | os.PathLike[str] | None = None) -> LlamaCppBuild | None:
    """The finished build in ``root`` (default :func:`default_dir`), or None when it is missing or incomplete."""
    folder = Path(root).expanduser().resolve() if root is not None else default_dir()
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if info.get("version") != VERSION:
        return None
    build = LlamaCppBuild(folder, float(info.get("seconds", 0.0)), cached=True)
    return build if all(p.exists() for p in build.pieces()) else None


def check_build_tools() -> None:
    """cmake and a C++ compiler, or one line naming the fix."""
    missing = [name for name in ("cmake",) if shutil.which(name) is None]
    if not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "c++", "g++", "clang++") if c):
        missing.append("a C++ compiler (c++/g++/clang++)")
    if missing:
        raise KitError(f"building llama.cpp needs {' and '.join(missing)}, not found on PATH. Fix: {TOOLS_FIX}")


def fetch_sdist(root: Path) -> Path:
    """The sdist from ``root``, else ``pip download --no-binary :all: --no-deps`` into it (registry only)."""
    sdist = root / SDIST_NAME
    if sdist.is_file():
        return sdist
    root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--quiet",
           "--disable-pip-version-check", "-d", str(root), REQUIREMENT]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not sdist.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise KitError(f"cannot get the {REQUIREMENT} source: not in {root} and the package registry said: {last}. "
                       f"Fix: put {SDIST_NAME} into {root} (pip download --no-binary :all: --no-deps {REQUIREMENT} "
                       "on a machine with the registry)")
    return sdist


def _extract(sdist: Path, root: Path) -> Path:
    """Unpack the sdist into ``root/src`` (through a partial folder, so an interrupted unpack is redone)."""
    src = root / "src"
    if (src / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        return src
    partial = root / "src.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with tarfile.open(sdist) as archive:
            archive.extractall(partial, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise KitError(f"{sdist}: not a usable {SDIST_NAME} ({exc}). Fix: delete it and run kit llama-cpp again") from exc
    shutil.rmtree(src, ignore_errors=True)
    (partial / f"llama_cpp_python-{VERSION}").rename(src)
    shutil.rmtree(partial, ignore_errors=True)
    return src


def _run_logged(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(cmd) + "\n")
        handle.flush()
        code = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        raise RunFailed(f"{what} failed (exit {code}): {lines[-1] if lines else 'no output'}; full log: {log}")


def _install_bindings(build: LlamaCppBuild) -> None:
    """Copy llama-cpp-python's ctypes bindings next to the build, loading ``build/bin/libllama.so``."""
    package = build.python_dir / "llama_cpp"
    package.mkdir(parents=True, exist_ok=True)
    for name in BINDING_FILES:
        shutil.copy2(build.root / "src" / "llama_cpp" / name, package / name)
    (package / "__init__.py").write_text(
        '"""llama-cpp-python\'s low-level ctypes bindings only, as kit llama-cpp installed them."""\n'
        f'__version__ = "{VERSION}"\n', encoding="utf-8")
    lib = package / "lib"  # where llama_cpp.py looks for libllama.so without LLAMA_CPP_LIB_PATH
    if lib.is_symlink() or lib.exists():
        lib.unlink()
    lib.symlink_to(build.lib_dir, target_is_directory=True)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One build at a time per cache folder (a test and the main job may start together)."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_llama_cpp(root: str | os.PathLike[str] | None = None, *, jobs: int | None = None,
                    force: bool = False) -> LlamaCppBuild:
    """Download (or reuse) the sdist and build llama.cpp into ``root``; a finished build is reused as is."""
    folder = Path(root).expanduser().resolve() if root is not None else default_dir()
    if not force and (found := find_build(folder)) is not None:
        return found
    check_build_tools()
    with _locked(folder):
        if not force and (found := find_build(folder)) is not None:  # built by another process meanwhile
            return found
        started = time.perf_counter()
        (folder / INFO_FILE).unlink(missing_ok=True)
        src = _extract(fetch_sdist(folder), folder)
        log = folder / "build.log"
        log.write_text("", encoding="utf-8")
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run_logged(["cmake", "-S", str(src / "vendor" / "llama.cpp"), "-B", str(folder / "build"), *generator,
                     *CMAKE_OPTIONS], log, "configuring llama.cpp (cmake)")
        _run_logged(["cmake", "--build", str(folder / "build"), "--target", *TARGETS,
                     "-j", str(jobs or os.cpu_count() or 2)], log, "building llama.cpp")
        build = LlamaCppBuild(folder, 0.0)
        link = build.llama_cpp / "llama-quantize"  # Unsloth looks for the quantizer beside the converter
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(build.quantize)
        _install_bindings(build)
        seconds = round(time.perf_counter() - started, 1)
        info = {"version": VERSION, "source": REQUIREMENT, "seconds": seconds, "targets": list(TARGETS),
                "cmake": list(CMAKE_OPTIONS), "llama_cpp": str(build.llama_cpp)}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return LlamaCppBuild(folder, seconds, cached=False)
