"""``kit export-script NOTEBOOK -o train.py``: a notebook as a plain script, for ``accelerate launch`` and clusters.

The script keeps the notebook's parameters cell verbatim (same names, same defaults) and then reads
``--name value`` options over them; the other code cells follow in order, markdown headings as comments.
Left out: the install cell, cells tagged ``export-skip``, and display-only cells (only imports and
bare expressions); IPython magics (``%``/``!`` lines) become comments. Cells that write files (adapters,
``metrics.json``, plots) run on the main process only (:func:`kit.runinfo.is_main_process`), so under
``accelerate launch --num_processes N`` one process saves while all of them train.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import textwrap
import tokenize
from pathlib import Path
from typing import Any

from kit.errors import KitError

SKIP_TAG = "export-skip"
# Calls that write files: a cell making one runs on the main process only.
_WRITES = re.compile(
    r"\b(save_pretrained\w*|save_model|write_metrics|save_eval_set|plot_loss|savefig|push_to_hub\w*|export_gguf)\s*\("
)
_MAGIC = re.compile(r"^(\s*)([%!].*)$")

_PREAMBLE = '''\
#!/usr/bin/env python3
"""{notebook} as a script (written by `kit export-script`; edit the notebook, then export again).

  python {script} --max_steps 10
  accelerate launch --num_processes 2 {script} ...      # DDP: every process trains, the main one saves

Options: the notebook's parameters, same names and defaults ({count}); run with --help to list them.
"""

import argparse as _argparse
import ast as _ast

from kit.runinfo import is_main_process

try:
    from IPython.display import display
except ImportError:  # plain Python: show what a notebook would display
    display = print


def _option_type(default):
    """How a --name value string becomes the parameter's type (the type of its default)."""
    def parse(text):
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise _argparse.ArgumentTypeError(f"expected true or false, got {{text!r}}")
        if isinstance(default, str):
            return text
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        try:  # None, lists and mappings: a Python or JSON literal, else the text itself
            return _ast.literal_eval(text)
        except (ValueError, SyntaxError):
            if default is None:
                return None if text.strip().lower() in ("none", "null") else text
            raise _argparse.ArgumentTypeError(f"expected a literal like {{default!r}}, got {{text!r}}") from None
    parse.__name__ = type(default).__name__
    return parse


def _read_options(defaults, helps):
    parser = _argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in defaults.items():
        flags = [f"--{{name}}"] + ([f"--{{name.replace('_', '-')}}"] if "_" in name else [])
        text = helps.get(name, "")
        parser.add_argument(*flags, dest=name, type=_option_type(default), default=default, metavar="VALUE",
                            help=f"{{text}} (default: {{default!r}})".strip().replace("%", "%%"))
    return vars(parser.parse_args())
'''


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def parameter_comments(source: str) -> dict[str, str]:
    """The trailing ``# comment`` of each parameter assignment, keyed by name (the options' help text)."""
    comments: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        return {}
    found = {}
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if isinstance(target, ast.Name) and node.end_lineno in comments:
            found[target.id] = comments[node.end_lineno]
    return found


def is_install_cell(cell: dict[str, Any]) -> bool:
    """The notebooks' install cell (:mod:`kit.notebooks.install_cell`): a script runs where the kit is installed already."""
    from kit.notebooks.install_cell import is_install_cell as kit_install_cell

    return kit_install_cell(cell)


def is_display_only(source: str) -> bool:
    """Only imports and bare expressions (a notebook shows their value; a script would compute and drop it)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    exprs = [n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    if not exprs:
        return False  # only imports: later cells may rely on them
    for node in exprs:
        if not isinstance(node, ast.Expr):
            return False
        value = node.value
        if isinstance(value, ast.Call):
            func = value.func
            if not (isinstance(func, ast.Name) and func.id in ("display", "print")):
                return False
            if any(isinstance(sub, ast.Call) for arg in value.args for sub in ast.walk(arg)):
                return False  # display(f(x)) computes something
        elif not isinstance(value, (ast.Name, ast.Attribute, ast.Subscript, ast.Constant)):
            return False
    return True


def _strip_magics(source: str) -> str:
    return "\n".join(_MAGIC.sub(r"\1# (IPython only) \2", line) for line in source.splitlines())


def _constants(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _main_only(source: str, where: str) -> str:
    body = textwrap.indent(source, "    ", lambda line: True)
    wrapped = "if is_main_process():  # under accelerate launch only the main process writes files\n" + body
    if _constants(ast.parse(source)) != _constants(ast.parse(wrapped)):
        raise KitError(f"{where}: a multi-line string would change when indented under the main-process guard; "
                       f"tag the cell '{SKIP_TAG}' or move the text into a variable")
    return wrapped


def export_script(notebook: str | Path, script_name: str = "train.py") -> tuple[str, list[str]]:
    """The script text for ``notebook`` (to be saved as ``script_name``) and one line per cell left out or guarded (what the CLI reports)."""
    from kit.notebooks.files import notebook_parameters, parameters_cell, read_notebook

    path = Path(notebook)
    nb = read_notebook(path)
    params_source = parameters_cell(nb) if nb.get("cells") else ""
    defaults = notebook_parameters(path)  # raises KitError without a parameters cell
    helps = parameter_comments(params_source)
    parts = [_PREAMBLE.format(notebook=path.name, script=script_name, count=len(defaults))]
    notes: list[str] = []
    number = 0
    for index, cell in enumerate(nb.get("cells", [])):
        source = _source(cell).rstrip()
        if cell.get("cell_type") == "markdown":
            headings = [line for line in source.splitlines() if line.startswith("#")]
            parts.extend(f"\n# {line.lstrip('#').strip()}" for line in headings[:1])
            continue
        if cell.get("cell_type") != "code" or not source:
            continue
        number += 1
        where = f"{path.name}: cell {index}"
        first = source.splitlines()[0][:70]
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags:
            parts.append(
                "\n# The notebook's parameters cell: these defaults, then --name value options over them.\n"
                + source + "\n\n"
                + f"_DEFAULTS = {{name: globals()[name] for name in {list(defaults)!r}}}\n"
                + f"globals().update(_read_options(_DEFAULTS, {helps!r}))"
            )
            continue
        if SKIP_TAG in tags:
            notes.append(f"left out cell {index} (tagged {SKIP_TAG}): {first}")
            continue
        if is_install_cell(cell):
            notes.append(f"left out cell {index} (install): {first}")
            continue
        code = _strip_magics(source)
        if is_display_only(code):
            notes.append(f"left out cell {index} (display only): {first}")
            continue
        try:
            ast.parse(code)
        except SyntaxError as exc:
            raise KitError(f"{where}: not valid Python after removing IPython magics (line {exc.lineno}: {exc.msg})") from exc
        if _WRITES.search(code):
            code = _main_only(code, where)
            notes.append(f"main process only, cell {index} (writes files): {first}")
        parts.append(f"\n# --- cell {index}\n{code}")
    text = "\n".join(parts).rstrip() + "\n"
    ast.parse(text)  # what we write must at least compile
    return text, notes


# accelerate configs written next to the script: multi-GPU memory savers (they need GPUs; untested without them).
DEEPSPEED_ZERO3 = "accelerate_deepspeed_zero3.yaml"
FSDP = "accelerate_fsdp.yaml"
_CONFIG_HEAD = """\
# {what}
# Use: accelerate launch --config_file {name} {script} --max_steps 60
# Set num_processes to the number of GPUs; mixed_precision fp16 on GPUs without bf16 (T4, V100).
# Written by `kit export-script`; untested without GPUs here (accelerate loads it: tests/test_methods.py).
"""
_DEEPSPEED_BODY = """\
compute_environment: LOCAL_MACHINE
debug: false
distributed_type: DEEPSPEED
deepspeed_config:
  deepspeed_multinode_launcher: standard
  zero_stage: 3
  zero3_init_flag: true
  zero3_save_16bit_model: true
  offload_optimizer_device: none   # cpu: optimizer states in RAM (slower, much less GPU memory)
  offload_param_device: none       # cpu: parameters in RAM too (ZeRO-Infinity style)
"""
_FSDP_BODY = """\
compute_environment: LOCAL_MACHINE
debug: false
distributed_type: FSDP
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_cpu_ram_efficient_loading: true
  fsdp_offload_params: false       # true: parameters in RAM between uses (slower, less GPU memory)
  fsdp_reshard_after_forward: true
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_activation_checkpointing: false
"""
# What both configs say about the launch itself (one machine, bf16, num_processes GPUs).
_LAUNCH_TAIL = """\
downcast_bf16: 'no'
machine_rank: 0
main_training_function: main
mixed_precision: bf16
num_machines: 1
num_processes: {num_processes}
rdzv_backend: static
same_network: true
use_cpu: false
"""


def accelerate_configs(script_name: str = "train.py", num_processes: int = 2) -> dict[str, str]:
    """The two accelerate config files (name -> YAML text) written next to an exported script: DeepSpeed ZeRO-3
    and FSDP, both sharding weights, gradients and optimizer states across ``num_processes`` GPUs."""
    return {
        DEEPSPEED_ZERO3: _CONFIG_HEAD.format(
            what="DeepSpeed ZeRO-3: weights, gradients and optimizer states sharded across the GPUs (pip install "
                 "deepspeed).", name=DEEPSPEED_ZERO3, script=script_name)
        + _DEEPSPEED_BODY + _LAUNCH_TAIL.format(num_processes=num_processes),
        FSDP: _CONFIG_HEAD.format(
            what="PyTorch FSDP2: weights, gradients and optimizer states sharded across the GPUs (no extra package).",
            name=FSDP, script=script_name)
        + _FSDP_BODY + _LAUNCH_TAIL.format(num_processes=num_processes),
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit export-script``."""
    p = subparsers.add_parser(
        "export-script",
        help="turn a notebook into a plain script with --name value options (for accelerate launch, clusters)",
        description="Write NOTEBOOK as a Python script: its parameters become --name value options with the "
        "same defaults; under `accelerate launch` only the main process writes files.",
    )
    p.add_argument("notebook", help="the .ipynb file")
    p.add_argument("-o", "--output", required=True, help="where to write the script, e.g. train.py")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.expanduser().resolve() == Path(args.notebook).expanduser().resolve():
        raise KitError(f"-o {args.output}: this is the notebook itself; write the script elsewhere, e.g. -o train.py")
    if out.is_dir():
        raise KitError(f"-o {args.output}: this is a folder; give the script's file name, e.g. {out / 'train.py'}")
    text, notes = export_script(args.notebook, out.name)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KitError(f"{out}: cannot write the script ({exc.strerror or exc})") from exc
    out.chmod(out.stat().st_mode | 0o111)
    for name, config in accelerate_configs(out.name).items():
        target = out.parent / name
        if target.exists() and target.read_text(encoding="utf-8") != config:
            print(f"  kept {target}: it exists and differs from the kit's (delete it to get the kit's again)")
            continue
        target.write_text(config, encoding="utf-8")
        print(f"  wrote {target} (accelerate launch --config_file {target} {out.name})")
    for note in notes:
        print(f"  {note}")
    print(f"wrote {out} from {args.notebook} ({text.count(chr(10))} lines); run: accelerate launch {out} --help")
    return 0
