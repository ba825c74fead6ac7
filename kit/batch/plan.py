"""Batch plans: read a plan YAML safely, expand its grid, check it against the notebooks, order its runs.

A plan (read with ``yaml.safe_load``: plain mappings, lists and scalars, no tags)::

    defaults: {max_steps: 30, seed: 3407}    # optional: set in every run whose notebook defines the name
    grid: {lora_r: [8, 16]}                   # optional: cartesian product over every run whose notebook
                                              #   defines the name
    env: {HF_HUB_OFFLINE: "1"}                # optional: extra environment variables for the kernels
    runs:
      - notebook: notebooks/01_alpaca_sft.ipynb    # relative to the plan's folder, then the repository root
        name: alpaca                                # optional; default: the notebook's file stem
        parameters: {learning_rate: 2.0e-4}
        resources: {gpus: 1, cpus: 4}               # optional: what a ray/slurm task asks for (2+ GPUs:
                                                    #   accelerate launch); default 1 CPU (+1 GPU on GPU clusters)
      - notebook: notebooks/04_evaluate.ipynb
        parameters: {adapter_dir: "{run:alpaca}"}   # the output_dir of run 'alpaca'; waits for it

Every value is checked before anything runs: the notebook exists, each parameter is assigned in its
``parameters`` cell, and the value has the default's type (bool strict, an int passes for a float, a
``None`` default takes anything). A defaults or grid name no notebook defines is an error.

Grid runs are named ``<name>-<key>=<value>``. A run that refers to a swept run by its entry name inherits
the sweep: above, with ``grid: {lora_r: [8, 16]}``, the evaluation becomes ``evaluate-lora_r=8`` (reading
``alpaca-lora_r=8``) and ``evaluate-lora_r=16``; ``{run:alpaca-lora_r=8}`` pins one variant.

Each run's id is ``<NN>-<name>-<hash8>``, hash8 being the first 8 hex digits of the sha256 over the notebook's
bytes, the canonical JSON of its parameters as written (before ``{run:}`` resolution) and the hashes of the
runs it depends on: same notebook, same parameters, same upstream → same id, which ``--resume`` relies on.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.notebooks.files import notebook_parameters
from kit.paths import repo_root
from kit.runtime.redact import is_secret_name

_TOP_KEYS = ("runs", "defaults", "grid", "env")
_ENTRY_KEYS = ("notebook", "parameters", "name", "resources")
_RESOURCE_KEYS = ("gpus", "cpus")  # per run, for the ray and slurm backends; 2+ GPUs: accelerate launch
RUN_REFERENCE = re.compile(r"\{run:([^{}]*)\}")


@dataclass
class RunSpec:
    """One expanded run of a plan: what to execute, with which parameters, where, and after which runs."""

    index: int  # 1-based position in the expanded plan
    entry: int  # 0-based position of its entry in ``runs``
    base_name: str  # the entry's name (or notebook stem)
    name: str  # base name plus grid values; unique in the plan
    notebook: Path
    notebook_sha256: str
    notebook_defaults: dict[str, Any]
    written: dict[str, Any]  # parameters as written (defaults + grid + entry), before {run:} resolution
    grid_values: dict[str, Any]
    references: dict[str, str] = field(default_factory=dict)  # {run:X} text X -> name of the run it means
    dependencies: list[str] = field(default_factory=list)  # run names, in plan order
    hash: str = ""
    run_id: str = ""
    run_dir: Path = field(default_factory=Path)
    output_dir: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # resolved, output_dir injected
    resources: dict[str, int] = field(default_factory=dict)  # as written: {gpus, cpus}; backends add defaults

    @property
    def label(self) -> str:
        """How messages name this run's plan entry: ``runs[2] (evaluate)``."""
        return f"runs[{self.entry}] ({self.base_name})"

    @property
    def hash8(self) -> str:
        """The short hash that ends the run id."""
        return self.hash[:8]


@dataclass
class Plan:
    """A validated, expanded plan: its runs in plan order, the kernels' extra environment, the output folder."""

    path: Path
    label: str
    out_dir: Path
    runs: list[RunSpec]
    env: dict[str, str]
    grid: dict[str, list[Any]]

    def run(self, name: str) -> RunSpec:
        """The run called ``name``."""
        for spec in self.runs:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass
class _Entry:
    position: int
    name: str
    notebook: Path
    known: dict[str, Any]
    parameters: dict[str, Any]
    references: set[str] = field(default_factory=set)
    grid_keys: list[str] = field(default_factory=list)
    resources: dict[str, int] = field(default_factory=dict)


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON: equal parameter sets give equal text (and hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def run_references(value: Any) -> list[str]:
    """Every ``{run:NAME}`` name in a parameter value (strings, also inside lists and mappings)."""
    if isinstance(value, str):
        return RUN_REFERENCE.findall(value)
    if isinstance(value, list):
        return [name for item in value for name in run_references(item)]
    if isinstance(value, dict):
        return [name for item in value.values() for name in run_references(item)]
    return []


def _substitute(value: Any, paths: dict[str, str]) -> Any:
    if isinstance(value, str):
        return RUN_REFERENCE.sub(lambda m: paths[m.group(1)], value)
    if isinstance(value, list):
        return [_substitute(item, paths) for item in value]
    if isinstance(value, dict):
        return {k: _substitute(v, paths) for k, v in value.items()}
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    if isinstance(value, tuple):
        return "list"
    return type(value).__name__


def type_problem(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot replace the notebook default ``default`` (None when it can)."""
    if default is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, list)
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = True
    if ok:
        return None
    message = f"expects {_kind(default)} (the notebook's default is {default!r}), got {_kind(value)} {value!r}"
    if isinstance(default, float) and isinstance(value, str):
        try:
            float(value)
            message += f"; YAML reads {value} as text: write it with a dot, e.g. {float(value)!r}"
        except ValueError:
            pass
    return message


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _safe(name: str) -> str:
    return re.sub(r"[^\w.=+-]+", "_", name).strip("_")[:80] or "run"


def _find_notebook(value: str, plan_dir: Path) -> Path | None:
    path = Path(value).expanduser()
    if path.is_absolute():
        return path.resolve() if path.is_file() else None
    for base in (plan_dir, repo_root()):
        if (base / path).is_file():
            return (base / path).resolve()
    return None


def _unknown_parameter(where: str, key: str, known: dict[str, Any]) -> KitError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return KitError(
        f"{where}: parameter '{key}' is not defined in the notebook's parameters cell{hint}; "
        f"known: {', '.join(known) or '(none)'}"
    )


# A plan expands to at most this many YAML nodes once aliases are followed (real plans: a few hundred).
MAX_PLAN_NODES = 100_000


def _expanded_size(node: Any, label: str) -> int:
    """How many nodes ``node`` stands for with every alias expanded (memoised: shared nodes cost once here)."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def children(item: Any) -> list[Any]:
        value = getattr(item, "value", None)
        if not isinstance(value, list):
            return []
        return [part for pair in value for part in (pair if isinstance(pair, tuple) else (pair,))]

    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        item, done = stack.pop()
        key = id(item)
        if done:
            visiting.discard(key)
            sizes[key] = min(MAX_PLAN_NODES + 1, 1 + sum(sizes[id(c)] for c in children(item)))
            continue
        if key in sizes:
            continue
        if key in visiting:
            raise KitError(f"{label}: a YAML alias refers to the node that contains it; write the values out")
        visiting.add(key)
        stack.append((item, True))
        stack.extend((c, False) for c in children(item) if id(c) not in sizes)
    return sizes[id(node)]


def _plan_loader(label: str) -> type:
    """A ``yaml.SafeLoader`` that refuses documents whose aliases expand to more than MAX_PLAN_NODES nodes."""
    import yaml

    class PlanLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            """A key written twice is an error (YAML keeps the last one without a word)."""
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise KitError(
                        f"{label}: line {line}: the key '{key_node.value}' is written twice in one mapping (first on "
                        f"line {seen[key_node.value]}); YAML would keep only the last: merge them into one"
                    )
                seen[key_node.value] = line
            return super().construct_mapping(node, deep)

        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None and _expanded_size(node, label) > MAX_PLAN_NODES:
                raise KitError(
                    f"{label}: the plan's YAML aliases (*name) expand to more than {MAX_PLAN_NODES:,} values; "
                    "a plan needs a few hundred at most: write the values out instead of nesting aliases"
                )
            return node

    return PlanLoader


def read_plan_file(path: Path, label: str) -> dict[str, Any]:
    """The plan mapping from ``path`` via a safe YAML loader; tags such as ``!!python/object`` are refused.

    The file must be UTF-8; aliases are allowed as long as the plan they expand to stays small (an alias
    bomb is refused before anything walks it), and nesting deeper than the parser allows is refused too.
    """
    import yaml

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KitError(f"{label}: cannot read the plan ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KitError(
            f"{label}: the plan is not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 4]!r}); "
            "save it as UTF-8 (e.g. `iconv -f GBK -t UTF-8`)"
        ) from None
    try:
        data = yaml.load(text, Loader=_plan_loader(label))  # a SafeLoader subclass: no tags
    except yaml.YAMLError as exc:
        raise KitError(
            f"{label}: not a valid plan ({' '.join(str(exc).split())}); plans are plain YAML "
            "(mappings, lists, strings, numbers), tags such as !!python/object are not allowed"
        ) from None
    except RecursionError:
        raise KitError(f"{label}: the plan is nested too deeply to read; plans are a few levels deep") from None
    if not isinstance(data, dict):
        raise KitError(f"{label}: a plan is a mapping with a 'runs' list (see kit batch --help)")
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise KitError(f"{label}: unknown top-level key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(_TOP_KEYS)}")
    return data


def _mapping(data: dict[str, Any], key: str, label: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise KitError(f"{label}: '{key}' must be a mapping of names to values")
    return value


def _read_entries(data: dict[str, Any], plan_dir: Path, label: str) -> list[_Entry]:
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise KitError(f"{label}: 'runs' must be a non-empty list of {{notebook, parameters, name}} entries")
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(runs):
        where = f"{label}: runs[{position}]"
        if not isinstance(raw, dict):
            raise KitError(f"{where}: each run is a mapping with 'notebook' (and optional 'parameters', 'name')")
        extra = [k for k in raw if k not in _ENTRY_KEYS]
        if extra:
            raise KitError(f"{where}: unknown key(s) {', '.join(map(str, extra))}; allowed: {', '.join(_ENTRY_KEYS)}")
        if not isinstance(raw.get("notebook"), str) or not raw["notebook"].strip():
            raise KitError(f"{where}: 'notebook' (a path to an .ipynb file) is required")
        notebook = _find_notebook(raw["notebook"], plan_dir)
        if notebook is None:
            raise KitError(
                f"{where}: notebook '{raw['notebook']}' not found (looked in {plan_dir} and {repo_root()}); "
                "fix the path"
            )
        name = raw.get("name", notebook.stem)
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "{}"):
            raise KitError(f"{where}: 'name' must be a non-empty string without braces")
        where = f"{where} ({name})"
        if name in seen:
            raise KitError(f"{where}: runs[{seen[name]}] has the same name; give each entry a distinct 'name'")
        seen[name] = position
        try:
            known = notebook_parameters(notebook)
        except KitError as exc:
            raise KitError(f"{where}: {exc}") from exc
        parameters = raw.get("parameters") or {}
        if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
            raise KitError(f"{where}: 'parameters' must be a mapping of parameter names to values")
        for key, value in parameters.items():
            if key not in known:
                raise _unknown_parameter(where, key, known)
            problem = type_problem(value, known[key])
            if problem:
                raise KitError(f"{where}: parameter '{key}' {problem}")
        entries.append(_Entry(position, name, notebook, known, dict(parameters), resources=_resources(raw, where)))
    return entries


def _resources(raw: dict[str, Any], where: str) -> dict[str, int]:
    value = raw.get("resources")
    if value is None:
        return {}
    if not isinstance(value, dict) or any(k not in _RESOURCE_KEYS for k in value):
        raise KitError(f"{where}: 'resources' is a mapping with {' and/or '.join(_RESOURCE_KEYS)}, e.g. {{gpus: 1, cpus: 4}}")
    for key, count in value.items():
        least = 1 if key == "cpus" else 0
        if not isinstance(count, int) or isinstance(count, bool) or count < least:
            raise KitError(f"{where}: resources: '{key}' must be a whole number of at least {least}, got {count!r}")
    return dict(value)


def _check_shared(entries: list[_Entry], defaults: dict[str, Any], grid: dict[str, Any], label: str) -> None:
    for section, values in (("defaults", {k: [v] for k, v in defaults.items()}), ("grid", grid)):
        for key, options in values.items():
            users = [e for e in entries if key in e.known]
            if not users:
                raise KitError(
                    f"{label}: {section}: parameter '{key}' is not defined in any run's notebook; "
                    f"remove it or fix its name"
                )
            if section == "grid" and (not isinstance(options, list) or not options):
                raise KitError(f"{label}: grid: '{key}' must be a non-empty list of values")
            if section == "grid" and is_secret_name(key) and any(isinstance(v, str) and v for v in options):
                raise KitError(
                    f"{label}: grid: '{key}' is a secret; a grid writes its values into run names and folders. "
                    "Set it once in defaults or a run's parameters"
                )
            for entry in users:
                if section == "grid" and key in entry.parameters:
                    raise KitError(
                        f"{label}: runs[{entry.position}] ({entry.name}): parameter '{key}' is set in the run and "
                        "swept by the grid; remove one of them"
                    )
                for value in options:
                    problem = type_problem(value, entry.known[key])
                    if problem:
                        raise KitError(
                            f"{label}: {section}: parameter '{key}' for runs[{entry.position}] ({entry.name}) {problem}"
                        )


def _inherit_grid(entries: list[_Entry], defaults: dict[str, Any], grid: dict[str, Any]) -> None:
    by_name = {e.name: e for e in entries}
    keys = {e.name: {k for k in grid if k in e.known} for e in entries}
    for entry in entries:
        applied = {k: v for k, v in defaults.items() if k in entry.known} | entry.parameters
        entry.references = {ref for value in applied.values() for ref in run_references(value)}
    changed = True
    while changed:
        changed = False
        for entry in entries:
            for ref in entry.references:
                if ref in by_name and not keys[ref] <= keys[entry.name]:
                    keys[entry.name] |= keys[ref]
                    changed = True
    for entry in entries:
        entry.grid_keys = [k for k in grid if k in keys[entry.name]]


def _expand(entries: list[_Entry], defaults: dict[str, Any], grid: dict[str, Any], label: str) -> list[RunSpec]:
    digests: dict[Path, str] = {}
    specs: list[RunSpec] = []
    for entry in entries:
        if entry.notebook not in digests:
            digests[entry.notebook] = hashlib.sha256(entry.notebook.read_bytes()).hexdigest()
        for combo in itertools.product(*(grid[k] for k in entry.grid_keys)):
            values = dict(zip(entry.grid_keys, combo))
            written = {k: v for k, v in defaults.items() if k in entry.known}
            written |= {k: v for k, v in values.items() if k in entry.known}
            written |= entry.parameters
            name = entry.name + "".join(f"-{k}={_format_value(v)}" for k, v in values.items())
            specs.append(
                RunSpec(len(specs) + 1, entry.position, entry.name, name, entry.notebook, digests[entry.notebook],
                        entry.known, written, values, resources=dict(entry.resources))
            )
    names: dict[str, RunSpec] = {}
    for spec in specs:
        if spec.name in names:
            raise KitError(
                f"{label}: {spec.label} and {names[spec.name].label} both expand to a run named '{spec.name}'; "
                "rename one entry or make the grid values distinct"
            )
        names[spec.name] = spec
    return specs


def _link(specs: list[RunSpec], label: str) -> None:
    by_name = {s.name: s for s in specs}
    by_base: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by_base.setdefault(spec.base_name, []).append(spec)
    for spec in specs:
        for key, value in spec.written.items():
            for ref in run_references(value):
                target = by_name.get(ref)
                if target is None and ref in by_base:
                    matches = [
                        s for s in by_base[ref]
                        if all(k in spec.grid_values and spec.grid_values[k] == v for k, v in s.grid_values.items())
                    ]
                    target = matches[0] if len(matches) == 1 else None
                if target is None:
                    raise KitError(
                        f"{label}: {spec.label}: parameter '{key}' refers to {{run:{ref}}}, but no run is named "
                        f"'{ref}'; runs: {', '.join(by_name)}"
                    )
                if "output_dir" not in target.notebook_defaults and "output_dir" not in target.written:
                    raise KitError(
                        f"{label}: {spec.label}: {{run:{ref}}} points at a notebook without an 'output_dir' "
                        "parameter, so it has no output folder to refer to"
                    )
                spec.references[ref] = target.name
                if target.name not in spec.dependencies:
                    spec.dependencies.append(target.name)
        spec.dependencies.sort(key=lambda name: by_name[name].index)


def execution_order(specs: list[RunSpec], label: str = "plan") -> list[RunSpec]:
    """Runs so that each comes after the runs it refers to (plan order otherwise); a cycle is a KitError."""
    by_name = {s.name: s for s in specs}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    order: list[RunSpec] = []

    def visit(spec: RunSpec, path: list[RunSpec]) -> None:
        if state.get(spec.name) == 2:
            return
        if state.get(spec.name) == 1:
            cycle = [*path[path.index(spec):], spec]
            raise KitError(
                f"{label}: the runs refer to each other in a cycle: {' → '.join(f'{s.label} {s.name}' for s in cycle)}; "
                "a run can only use the output of a run that does not depend on it"
            )
        state[spec.name] = 1
        for dep in spec.dependencies:
            visit(by_name[dep], [*path, spec])
        state[spec.name] = 2
        order.append(spec)

    for spec in specs:
        visit(spec, [])
    return order


def _finish(specs: list[RunSpec], out_dir: Path, label: str) -> None:
    by_name = {s.name: s for s in specs}
    width = max(2, len(str(len(specs))))
    root = repo_root()
    for spec in execution_order(specs, label):
        digest = hashlib.sha256(bytes.fromhex(spec.notebook_sha256))
        digest.update(b"\0" + canonical_json(spec.written).encode("utf-8"))
        for dep in sorted(spec.dependencies):
            digest.update(b"\0" + by_name[dep].hash.encode("ascii"))
        spec.hash = digest.hexdigest()
        spec.run_id = f"{spec.index:0{width}d}-{_safe(spec.name)}-{spec.hash8}"
        spec.run_dir = out_dir / spec.run_id
        paths = {ref: str(by_name[target].output_dir) for ref, target in spec.references.items()}
        spec.parameters = _substitute(spec.written, paths)
        if spec.parameters.get("eval_samples") == 0 and "eval_samples" in spec.notebook_defaults:
            from kit.evaluation.block import EVAL_SAMPLES_ZERO

            raise KitError(f"{label}: {spec.label}: {EVAL_SAMPLES_ZERO}")
        given = spec.parameters.get("output_dir")
        if isinstance(given, str) and not given.strip():
            raise KitError(
                f"{label}: {spec.label}: output_dir is empty, which would write into the repository root; give a "
                "folder, or leave output_dir out so the run writes to its own folder under --out"
            )
        if isinstance(given, str) and given:
            spec.output_dir = Path(given) if Path(given).is_absolute() else (root / given).resolve()
        elif "output_dir" in spec.notebook_defaults and "output_dir" not in spec.written:
            spec.output_dir = spec.run_dir / "output"
            spec.parameters["output_dir"] = str(spec.output_dir)


def check_out_dir(out: Path, what: str = "--out") -> None:
    """A :class:`KitError` unless ``out`` is a folder or can be created as one (not a file, not under a file)."""
    if out.exists() and not out.is_dir():
        raise KitError(f"{what} {out}: this is a file, not a folder; give a folder for the runs (it is created)")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise KitError(f"{what} {out}: this folder is not writable; choose another folder or fix its permissions")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise KitError(f"{what} {out}: {parent} is a file, not a folder; choose another output folder")
            if not os.access(parent, os.W_OK | os.X_OK) and not out.exists():
                raise KitError(f"{what} {out}: cannot create it, {parent} is not writable; choose another folder")
            break


def load_plan(path: str | Path, out_dir: str | Path | None = None) -> Plan:
    """Read, expand and validate the plan at ``path``; runs go under ``out_dir`` (default ``runs/<stem>``)."""
    label = str(path)
    plan_path = Path(path).expanduser().resolve()
    data = read_plan_file(plan_path, label)
    out = Path(out_dir if out_dir is not None else Path("runs") / plan_path.stem).expanduser().resolve()
    check_out_dir(out, "--out" if out_dir is not None else "the output folder")
    env_raw = _mapping(data, "env", label)
    env: dict[str, str] = {}
    for key, value in env_raw.items():
        if isinstance(value, (dict, list)) or value is None:
            raise KitError(f"{label}: env: '{key}' must be a string or number, got {_kind(value)}")
        if not key or "=" in key or "\0" in key or not key.strip():
            raise KitError(
                f"{label}: env: {key!r} is not a valid variable name (no '=', no NUL, not empty); fix the name"
            )
        env[key] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        if "\0" in env[key]:
            raise KitError(f"{label}: env: the value of '{key}' holds a NUL character, which no environment can carry")
    defaults = _mapping(data, "defaults", label)
    grid = _mapping(data, "grid", label)
    entries = _read_entries(data, plan_path.parent, label)
    _check_shared(entries, defaults, grid, label)
    _inherit_grid(entries, defaults, grid)
    specs = _expand(entries, defaults, grid, label)
    _link(specs, label)
    _finish(specs, out, label)
    _check_outputs(specs, label)
    return Plan(plan_path, label, out, specs, env, grid)


def _check_outputs(specs: list[RunSpec], label: str) -> None:
    """Two runs writing to one output folder would overwrite each other: an error naming both."""
    seen: dict[Path, RunSpec] = {}
    for spec in specs:
        if spec.output_dir is None:
            continue
        other = seen.get(spec.output_dir)
        if other is not None:
            why = (
                "the grid expands one entry into several runs but output_dir is fixed"
                if other.entry == spec.entry
                else "both set the same output_dir"
            )
            raise KitError(
                f"{label}: {other.label} run '{other.name}' and {spec.label} run '{spec.name}' would write to the same "
                f"output folder {spec.output_dir} ({why}), each overwriting the last; remove output_dir (each run "
                "then writes to its own folder) or give each run its own"
            )
        seen[spec.output_dir] = spec
