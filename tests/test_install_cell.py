"""The notebooks' install cell, run for real in a fresh virtual environment that has no kit.

The venv gets the already-installed heavy packages (torch, transformers, unsloth, ...) of the running
interpreter through a ``.pth`` file pointing at a folder of links that leaves the kit out, so the cell's pip
finds them satisfied and only the kit itself is built and installed, non-editable, from a ``git+file://``
snapshot of this checkout. Then the cell runs again (nothing may change), the tiny model is built from the
packaged sample data, and notebook 01 runs to the end in a working directory that is not a clone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from kit import __version__
from kit.notebooks import install, install_cell
from kit.notebooks.install_cell import cell_source

ROOT = Path(__file__).resolve().parent.parent
# Left out of the shared packages: the kit itself, and the venv's own pip / setuptools.
_KIT_ENTRIES = ("kit", "__editable__", "unsloth_notebook_kit", "pip", "setuptools", "_distutils_hack",
                "pkg_resources", "distutils-precedence.pth")

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git for the git+file:// source")


def _snapshot(dest: Path) -> Path:
    """A one-commit git repository holding this working tree (tracked and untracked, not ignored files)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src, dst = ROOT / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *args], cwd=dest, check=True)
    return dest


def _shared_packages(dest: Path) -> Path:
    """Links to every entry of this interpreter's site-packages except the kit (and pip/setuptools)."""
    dest.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if not entry.name.startswith(_KIT_ENTRIES) and not entry.name.endswith(".pth"):
            (dest / entry.name).symlink_to(entry)
    return dest


def _venv(venv: Path, shared: Path) -> tuple[Path, Path]:
    """A new virtual environment (with its own pip) that also sees ``shared``; its python and site-packages."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     venv, dict(os.environ)).stdout.strip())
    (site / "_shared_packages.pth").write_text(f"{shared}\n", encoding="utf-8")
    return python, site


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _listing(site: Path) -> dict[str, float]:
    return {str(p.relative_to(site)): p.stat().st_mtime for p in site.rglob("*") if not p.is_symlink()}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A venv without the kit where the install cell ran once; what each step printed and took."""
    tmp = tmp_path_factory.mktemp("install-cell")
    source = _snapshot(tmp / "source")
    venv = tmp / "venv"
    python, site = _venv(venv, _shared_packages(tmp / "shared"))
    work = tmp / "work"  # not a clone: the cell must take KIT_SOURCE
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("KIT_ROOT", "PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"KIT_SOURCE": f"git+{source.as_uri()}", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "UNSLOTH_DISABLE_STATISTICS": "1", "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    before = _run([str(python), "-c", "import kit"], work, env)
    start = time.perf_counter()
    first = _run([str(python), "-c", cell_source()], work, env)
    first_s = time.perf_counter() - start
    return {"python": python, "site": site, "work": work, "env": env, "before": before, "first": first,
            "first_s": first_s, "tmp": tmp, "source": source}


def test_the_venv_has_no_kit_before_the_cell(fresh: dict) -> None:
    assert fresh["before"].returncode != 0 and "No module named 'kit'" in fresh["before"].stderr
    torch = _run([str(fresh["python"]), "-c", "import torch; print(torch.__version__)"], fresh["work"], fresh["env"])
    assert torch.returncode == 0, torch.stderr  # the heavy packages are shared


def test_cell_installs_the_kit_from_kit_source(fresh: dict) -> None:
    first = fresh["first"]
    assert first.returncode == 0, first.stdout + first.stderr
    assert "[kit] installing git+file://" in first.stdout and "next to torch==" in first.stdout
    assert f"[kit] installed unsloth-notebook-kit {__version__}" in first.stdout
    assert fresh["first_s"] < 120, f"install took {fresh['first_s']:.0f} s"
    probe = ("import kit, kit.paths, torch; print(kit.__file__); print(kit.paths.sample_data_dir()); "
             "print(kit.paths.resolve_path('data/alpaca/alpaca_en.json')); print(torch.__version__)")
    out = _run([str(fresh["python"]), "-c", probe], fresh["work"], fresh["env"])
    assert out.returncode == 0, out.stderr
    kit_file, data_dir, alpaca, _torch = out.stdout.split()
    assert Path(kit_file).is_relative_to(fresh["site"])  # a real (non-editable) install, not this checkout
    assert Path(data_dir).is_dir() and not Path(data_dir).is_symlink() and Path(data_dir).is_relative_to(fresh["site"])
    assert Path(alpaca).is_file() and Path(alpaca).is_relative_to(fresh["site"])


def test_packaged_sample_data_is_complete(fresh: dict) -> None:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "data"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    ours = sorted(str(Path(name).relative_to("data")) for name in listed
                  if name and (ROOT / name).is_file() and not name.endswith(".py"))
    shipped_root = fresh["site"] / "kit" / "_sample_data"
    shipped = sorted(str(p.relative_to(shipped_root)) for p in shipped_root.rglob("*") if p.is_file())
    assert shipped == ours
    report = _run([str(fresh["python"]), "-m", "kit", "data", "report", "data/medical", "--kind", "medical"],
                  fresh["work"], fresh["env"])
    assert report.returncode == 0 and "内科" in report.stdout, report.stdout + report.stderr


def test_second_run_changes_nothing(fresh: dict) -> None:
    before = _listing(fresh["site"])
    again = _run([str(fresh["python"]), "-c", cell_source()], fresh["work"], fresh["env"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"[kit] unsloth-notebook-kit {__version__} is installed: nothing to do"
    assert _listing(fresh["site"]) == before
    assert not any(p.name == "unsloth-notebook-kit" for p in fresh["work"].rglob("*"))  # no clone made


def test_inside_a_clone_it_installs_that_clone(fresh: dict, tmp_path: Path) -> None:
    python, site = _venv(tmp_path / "venv", fresh["tmp"] / "shared")
    clone = fresh["source"]
    env = {**fresh["env"], "KIT_SOURCE": "git+file:///nowhere"}  # must not be used inside a clone
    # One process: the cell, then `import kit` at once (no kernel restart after an editable install).
    out = _run([str(python), "-c", cell_source() + "\nimport kit; print('KIT_FILE', kit.__file__)"],
               clone / "notebooks", env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"[kit] installing {clone} next to torch==" in out.stdout
    assert f"KIT_FILE {clone / 'kit' / '__init__.py'}" in out.stdout
    assert not (site / "kit").exists()  # editable: the clone's files, not a copy
    later = _run([str(python), "-c", "import kit; print(kit.__file__)"], fresh["work"], env)
    assert later.stdout.strip() == str(clone / "kit" / "__init__.py"), later.stderr
    again = _run([str(python), "-c", cell_source()], clone, env)
    assert again.stdout.strip().endswith("is installed: nothing to do"), again.stdout + again.stderr


def test_a_wrong_source_fails_with_one_clear_message(fresh: dict, tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {**fresh["env"], "KIT_SOURCE": f"git+{(tmp_path / 'nowhere').as_uri()}"}
    pip_site = Path(sysconfig.get_paths()["purelib"])  # pip for the bare venv, from this interpreter
    site = Path(_run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).stdout.strip())
    (tmp_path / "pip-only").mkdir()
    (tmp_path / "pip-only" / "pip").symlink_to(pip_site / "pip")
    (site / "pip.pth").write_text(f"{tmp_path / 'pip-only'}\n", encoding="utf-8")
    out = _run([str(venv / "bin" / "python"), "-c", cell_source()], tmp_path, env, timeout=120)
    assert out.returncode != 0
    assert "[kit] installing git+file://" in out.stderr  # the cell's first stage: pip could not get the kit
    assert "set KIT_SOURCE" in out.stderr.splitlines()[-1]


@pytest.mark.notebooks
def test_notebook_runs_to_the_end_in_the_fresh_venv(fresh: dict) -> None:
    python, work, env = fresh["python"], fresh["work"], fresh["env"]
    spec = _run([str(python), "-c", "from jupyter_client.kernelspec import KernelSpecManager as K; "
                 "print(K().get_kernel_spec('python3').argv[0])"], work, env)
    assert spec.stdout.strip() == str(python), spec.stdout + spec.stderr  # the kernel is the fresh venv's
    tiny = _run([str(python), "-m", "kit", "tiny-model", str(fresh["tmp"] / "tiny"), "--pretrain-steps", "10"],
                work, env)
    assert tiny.returncode == 0, tiny.stdout + tiny.stderr
    out = work / "01.ipynb"
    params = {"model_name": str(fresh["tmp"] / "tiny"), "load_in_4bit": False, "dtype": "float32",
              "max_seq_length": 256, "max_steps": 3, "per_device_train_batch_size": 4,
              "gradient_accumulation_steps": 1, "eval_samples": 2, "eval_max_new_tokens": 8,
              "data_path": "data/alpaca/alpaca_en.json", "output_dir": "outputs/01"}  # data/ from the package
    cmd = [str(python), "-m", "papermill", str(ROOT / "notebooks" / "01_alpaca_sft.ipynb"), str(out),
           "-k", "python3", "--no-progress-bar", "-y", json.dumps(params)]
    run = _run(cmd, work, env, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    executed = json.loads(out.read_text(encoding="utf-8"))
    install = next(c for c in executed["cells"] if "".join(c["source"]).startswith("# Install the kit."))
    printed = "".join("".join(o.get("text", "")) for o in install["outputs"])
    assert "is installed: nothing to do" in printed
    assert (work / "outputs" / "01" / "adapter_config.json").is_file()
    assert json.loads((work / "outputs" / "01" / "metrics.json").read_text(encoding="utf-8"))["steps"] == 3


class _FakeColab:
    """Stands in for pip and the torch probe on a Colab GPU runtime (CUDA torch, a T4), recording each pip call."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.constraints: list[str] = []
        self.installed = False
        self.fail_first = fail_first

    def version(self, name: str) -> str:
        import importlib.metadata

        known = {"torch": "2.8.0+cu126", "torchvision": "0.23.0+cu126"}
        if name == "unsloth-notebook-kit" and self.installed:
            return __version__
        if name in known:
            return known[name]
        raise importlib.metadata.PackageNotFoundError(name)

    def run(self, cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if "-c" in cmd and "torch.cuda.is_available()" in cmd[-1]:
            return subprocess.CompletedProcess(cmd, 0, stdout="True\n", stderr="")
        self.calls.append(cmd[cmd.index("install") + 1:])
        if "-c" not in cmd:  # the cell's first stage: pip install --no-deps KIT_SOURCE, the kit alone
            self.installed = True
            return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")
        self.constraints.append(Path(cmd[cmd.index("-c") + 1]).read_text(encoding="utf-8"))
        kit_calls = [c for c in self.calls if "-c" in c and "--no-deps" not in c]
        code = 1 if self.fail_first and len(kit_calls) == 1 and "--no-deps" not in cmd else 0
        return subprocess.CompletedProcess(cmd, code, stdout="", stderr="")


def _no_kit_until_installed(fake: _FakeColab, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Colab ``kit`` is not importable before the cell installs it (here this checkout would be found)."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "kit" and not fake.installed else real_find_spec(name, *a))


@pytest.mark.parametrize("fail_first", [False, True], ids=["gpu", "gpu-core-fallback"])
def test_on_a_colab_gpu_it_pins_cuda_torch_and_adds_the_gpu_extra(
    fail_first: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    fake = _FakeColab(fail_first)
    monkeypatch.chdir(tmp_path)  # /content: no clone around
    monkeypatch.delenv("KIT_SOURCE", raising=False)
    monkeypatch.setattr(importlib.metadata, "version", fake.version)
    monkeypatch.setattr(subprocess, "run", fake.run)
    _no_kit_until_installed(fake, monkeypatch)
    exec(compile(cell_source(), "install cell", "exec"), {"__name__": "__main__"})
    assert fake.calls[0] == ["-q", "--no-deps", f"git+{install_cell.REPO_URL}"]  # first stage: the kit alone
    kit_calls = [c for c in fake.calls if "-c" in c and "--no-deps" not in c]
    expected = [f"unsloth-notebook-kit[gpu]=={__version__}"]
    expected += [f"unsloth-notebook-kit[gpu-core]=={__version__}"] if fail_first else []
    assert [c[-1] for c in kit_calls] == expected  # the kit's needs, with the GPU extra, next to Colab's torch
    assert fake.calls[-1][-3:] == ["--no-deps", *install.unsloth_pins()]
    assert set(fake.constraints) == {"torch==2.8.0+cu126\ntorchvision==0.23.0+cu126\n"}  # Colab's torch stays
    assert f"installed unsloth-notebook-kit {__version__}" in capsys.readouterr().out


def test_kit_without_unsloth_is_not_taken_as_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.metadata
    import importlib.util

    fake = _FakeColab()
    fake.installed = True  # the kit's metadata matches, but unsloth (installed with --no-deps) is missing
    real_find_spec = importlib.util.find_spec
    has_unsloth = lambda: any("--no-deps" in c for c in fake.calls)  # noqa: E731
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(importlib.metadata, "version", fake.version)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "unsloth" and not has_unsloth() else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", fake.run)
    exec(compile(cell_source(), "install cell", "exec"), {"__name__": "__main__"})
    assert has_unsloth() and fake.calls[-1][-3:] == ["--no-deps", *install.unsloth_pins()]


def test_kit_on_pythonpath_with_its_needs_counts_as_installed(fresh: dict, tmp_path: Path) -> None:
    """The GPU machine: the kit is on PYTHONPATH (a copied tree, no distribution metadata), unsloth and the rest
    are installed; the cell must not run pip (there is no network there)."""
    python, site = _venv(tmp_path / "venv", fresh["tmp"] / "shared")
    tree = tmp_path / "tree"  # a copied tree: no *.egg-info next to it (an editable install leaves one in a clone)
    shutil.copytree(fresh["source"] / "kit", tree / "kit", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**fresh["env"], "PYTHONPATH": str(tree), "PIP_NO_INDEX": "1"}
    meta = _run([str(python), "-c", "import importlib.metadata as m; m.version('unsloth-notebook-kit')"],
                fresh["work"], env)
    assert meta.returncode != 0 and "PackageNotFoundError" in meta.stderr  # importable, but not pip-installed
    before = _listing(site)
    out = _run([str(python), "-c", cell_source()], fresh["work"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == (f"[kit] kit {__version__} is importable from {tree} (not pip-installed) "
                                  "with unsloth and everything else it needs: nothing to do")
    assert _listing(site) == before


@pytest.mark.parametrize("stage", ["first", "second"])
def test_kit_source_credentials_are_masked(stage: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 26: a KIT_SOURCE with a token is printed and reported as git+https://***@host/..., never the token,
    whether pip fails in the cell's first stage (the kit alone) or in the kit's second (its needs)."""
    import importlib.metadata

    fake = _FakeColab()
    real_run = fake.run
    failing = (lambda cmd: "install" in cmd) if stage == "first" else (lambda cmd: "install" in cmd and "-c" in cmd)
    monkeypatch.setattr(fake, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "")
                        if failing(cmd) else real_run(cmd, **kw))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIT_SOURCE", "git+https://someone:ghp_s3cr3tTOKEN@example.invalid/fork/kit.git@main")
    monkeypatch.setattr(importlib.metadata, "version", fake.version)
    monkeypatch.setattr(subprocess, "run", fake.run)
    _no_kit_until_installed(fake, monkeypatch)
    with pytest.raises((SystemExit, RuntimeError)) as raised:
        exec(compile(cell_source(), "install cell", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    shown = "git+https://***@example.invalid/fork/kit.git@main"
    if stage == "second":
        assert isinstance(raised.value, install.KitInstallError)
        assert f"[kit] installing {shown} next to torch==" in printed
    assert shown in str(raised.value) and "set KIT_SOURCE" in str(raised.value)
    assert "s3cr3t" not in printed + str(raised.value) and "someone" not in printed + str(raised.value)
