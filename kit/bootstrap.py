"""Fresh-machine set-up in one command, standard library only (it runs before anything is installed).

    python3 -m kit.bootstrap run    # .venv + install + SmolLM2-135M (offline) + every notebook headless -> runs/smollm2/
    python3 -m kit.bootstrap run --tiny   # the same on the 205k-parameter tiny model -> runs/tiny/ (a minute)
    python3 -m kit.bootstrap test   # .venv + install (with dev tools) + ruff + pytest
    python3 -m kit.bootstrap install [--gpu] [--dev]

CPU install order (the default): ``torch==2.13.0`` (the CPU build), then the kit with its pinned set,
then ``unsloth`` + ``unsloth_zoo`` with ``--no-deps`` (``pip install unsloth==2026.10.9`` cannot resolve,
and its dependencies would pull torchvision, triton, xformers and bitsandbytes onto a CPU machine).
``--gpu`` keeps the CUDA torch already present (Colab, a CUDA box) and adds the ``gpu`` extra.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_TORCH = "torch==2.13.0"
CUDA_ONLY = ("torchvision", "triton", "xformers", "bitsandbytes")
# The main job runs the real model's plan; `run --tiny` the fast wiring check on the 205k-parameter model.
PLANS = {
    "smollm2": ("notebooks/batches/smollm2.yaml", "notebooks/batches/smollm2.reference.json", "smollm2", ".cache/smollm2"),
    "tiny": ("notebooks/batches/tiny.yaml", "notebooks/batches/tiny.reference.json", "tiny-model", ".cache/tiny-model"),
}


def _say(message: str) -> None:
    print(f"[kit] {message}", flush=True)


class BootstrapError(Exception):
    """A step that failed, with the one line to print and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _run(cmd: list[str], **kwargs: object) -> None:
    pip = "pip" in cmd[1:4]
    if pip and "stderr" not in kwargs:
        code, error = _pip(cmd)
    else:
        code, error = subprocess.run(cmd, cwd=ROOT, **kwargs).returncode, ""  # type: ignore[call-overload]
    if code != 0:
        what = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd[:6]))
        raise BootstrapError(f"`{what} ...` failed (exit {code}){': ' + error if error else ''}", code)


def pip_error(stderr: str) -> str:
    """The gist of pip's stderr: its ERROR lines joined (or the last line), on one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    text = " ".join(errors or lines[-1:])
    return text[:400] + ("..." if len(text) > 400 else "")


def _pip(cmd: list[str]) -> tuple[int, str]:
    """Run a pip command, passing its stderr through; returns (exit code, :func:`pip_error` of its stderr)."""
    result = subprocess.run(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, errors="replace", check=False)
    if result.stderr:
        sys.stderr.write(result.stderr)
        sys.stderr.flush()
    return result.returncode, pip_error(result.stderr or "") if result.returncode else ""


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def install(venv: Path | None, *, gpu: bool = False, dev: bool = False) -> Path:
    """Create ``venv`` if needed and install the kit into it; a stamp file makes a re-run a no-op.

    ``venv=None`` installs into the running interpreter (Colab: no virtual environment there).
    """
    if venv is None:
        venv = Path(sys.prefix)
        py = Path(sys.executable)
    else:
        py = _venv_python(venv)
    if not py.exists():
        _say(f"creating virtual environment {venv}")
        _run([sys.executable, "-m", "venv", str(venv)])
    extras = [e for e, on in (("dev", dev), ("gpu", gpu)) if on]
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "requirements-unsloth.txt").read_bytes()
    ).hexdigest()[:12]
    stamp = venv / f".kit-install-{digest}-{'gpu' if gpu else 'cpu'}-{'-'.join(extras) or 'base'}"
    if stamp.exists():
        _say(f"{venv} is up to date")
        return py
    start = time.perf_counter()
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not gpu:
        _say(f"installing {CPU_TORCH} (CPU build)")
        _run([*pip, CPU_TORCH])
    torch_version = subprocess.run(
        [str(py), "-W", "ignore", "-c", "import torch; print(torch.__version__.split('+')[0])"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        # Pin the torch already there so no later step swaps it (never a reinstall under a running kernel).
        if torch_version:
            constraints.write(f"torch=={torch_version}\n")
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    _say(f"installing the kit and its pinned set{' + ' + ', '.join(extras) if extras else ''}")
    code, error = _pip([*pip, "-c", constraints.name, "-e", target])
    if code != 0:
        if not gpu or "xformers" not in error.lower():
            os.unlink(constraints.name)
            raise BootstrapError(f"pip could not install the kit{' with ' + ', '.join(extras) if extras else ''}: "
                                 f"{error or f'exit {code}'}", code)
        # No xformers build for this torch: keep the torch, drop xformers (Unsloth falls back to SDPA).
        _say(f"pip could not install xformers for torch {torch_version or '(none found)'} ({error}); "
             "installing without it (Unsloth uses PyTorch SDPA)")
        fallback = "." + "[" + ",".join(["dev"] * dev + ["gpu-core"]) + "]"
        _run([*pip, "-c", constraints.name, "-e", fallback])
    os.unlink(constraints.name)
    _say("installing unsloth 2026.10.9 + unsloth_zoo 2026.10.9 with --no-deps")
    _run([*pip, "--no-deps", "-r", "requirements-unsloth.txt"])
    _run([str(py), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], stdout=subprocess.DEVNULL)
    if not gpu:
        check = f"import importlib.util as u; print(','.join(m for m in {CUDA_ONLY!r} if u.find_spec(m)))"
        found = subprocess.run([str(py), "-c", check], capture_output=True, text=True, check=False).stdout.strip()
        if found:
            raise BootstrapError(f"CUDA-only packages in a CPU environment: {found}; remove them with pip uninstall")
    for old in venv.glob(".kit-install-*"):
        old.unlink()
    stamp.touch()
    _say(f"installed in {time.perf_counter() - start:.0f} s into {venv}")
    return py


def run_main(venv: Path, out: str | None, tiny: bool = False) -> int:
    """Install, build the model offline, and run every notebook headless through ``kit batch``."""
    plan, reference, builder, model_dir = PLANS["tiny" if tiny else "smollm2"]
    out = out or f"runs/{'tiny' if tiny else 'smollm2'}"
    py = install(venv)
    kit = [str(py), "-m", "kit"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    _run([*kit, builder, model_dir], env=env)
    if not tiny:
        build_llama_cpp(py, env)
    _say_precision(py, env)
    start = time.perf_counter()
    command = [*kit, "batch", plan, "--out", out]
    if (ROOT / reference).is_file():
        command += ["--check-reference", reference]
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    _say(f"batch finished in {time.perf_counter() - start:.0f} s with exit code {code}")
    _say(f"executed notebooks, adapters, metrics and the summary are under {ROOT / out}/ (summary.md)")
    return code


def _say_precision(py: Path, env: dict[str, str]) -> None:
    """Print the dtype a plan's ``dtype: auto`` gets on this machine, and why (kit.runtime.precision.resolve_dtype)."""
    probe = "from kit.runtime.precision import resolve_dtype; print(resolve_dtype('auto')[1])"
    result = subprocess.run([str(py), "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode == 0 and result.stdout.strip():
        _say(f"precision for dtype auto: {result.stdout.strip().splitlines()[-1]}")


def build_llama_cpp(py: Path, env: dict[str, str]) -> None:
    """llama.cpp for 05's GGUF parity gate, built once per machine into a cache outside the repository (its
    minutes are not the main job's: the batch's clock starts after it)."""
    probe = ("from kit.builders.llama_cpp import build_llama_cpp as b; r = b(); "
             "print(round(r.seconds), r.root, int(r.cached), sep='\\t')")
    result = subprocess.run([str(py), "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise BootstrapError(f"building llama.cpp failed: {lines[-1] if lines else 'no output'}", result.returncode)
    seconds, folder, cached = result.stdout.strip().splitlines()[-1].split("\t")
    if cached == "1":
        _say(f"llama.cpp ready: cached in {folder} (built once on this machine, in {seconds} s)")
    else:
        _say(f"llama.cpp built in {seconds} s (once per machine, cached in {folder})")


def run_tests(venv: Path, pytest_args: list[str]) -> int:
    """Install with the dev tools, then ruff and pytest; the exit code is the first failure's."""
    py = install(venv, dev=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    _say("ruff check .")
    lint = subprocess.run([str(py), "-m", "ruff", "check", "."], cwd=ROOT, env=env, check=False).returncode
    _say("pytest")
    tests = subprocess.run([str(py), "-m", "pytest", *pytest_args], cwd=ROOT, env=env, check=False).returncode
    return lint or tests


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python3 -m kit.bootstrap``: every failure is one ``[kit] error:`` line (``--debug``: traceback)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return _main([a for a in args if a != "--debug"])
    except SystemExit:
        raise
    except BaseException as exc:  # every error becomes one line; the traceback only with --debug
        if isinstance(exc, KeyboardInterrupt):
            print("[kit] interrupted", file=sys.stderr)
            return 130
        if debug:
            import traceback

            traceback.print_exception(exc)
        if isinstance(exc, BootstrapError):
            message, code = str(exc), exc.code
        elif isinstance(exc, OSError):
            message = f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
            code = 1
        else:
            message, code = f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1
        print(f"[kit] error: {' '.join(message.split())}", file=sys.stderr)
        return code


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m kit.bootstrap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=".venv", help="virtual environment folder (default .venv)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="action", required=True)
    p_run = sub.add_parser("run", help="install, build SmolLM2-135M offline, run every notebook headless")
    p_run.add_argument("--tiny", action="store_true", help="the fast wiring check on the 205k-parameter tiny model")
    p_run.add_argument("--out", default=None, help="batch output folder (default runs/smollm2, or runs/tiny)")
    p_test = sub.add_parser("test", help="install with dev tools, then ruff and pytest")
    p_test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments")
    p_inst = sub.add_parser("install", help="only create the environment and install")
    p_inst.add_argument("--gpu", action="store_true", help="CUDA machine: keep its torch, add the gpu extra")
    p_inst.add_argument("--dev", action="store_true", help="add pytest, hypothesis and ruff")
    p_inst.add_argument("--here", action="store_true", help="into this interpreter, no virtualenv (Colab)")
    args = parser.parse_args(argv)
    venv = (ROOT / args.venv).resolve() if not Path(args.venv).is_absolute() else Path(args.venv)
    if args.action == "run":
        return run_main(venv, args.out, tiny=args.tiny)
    if args.action == "test":
        return run_tests(venv, args.pytest_args)
    install(None if args.here else venv, gpu=args.gpu, dev=args.dev)
    return 0


if __name__ == "__main__":
    sys.exit(main())
