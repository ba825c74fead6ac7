"""Benchmark ``kit.data.load_medical`` against a row-by-row loader written the way tutorials do.

    .venv/bin/python benchmarks/loaders.py [--rows 500000] [--baseline-rows N] [--keep DIR]

Generates N synthetic GBK medical rows in department folders (quoted commas, embedded newlines, quotes,
~5% duplicate rows, ~1% placeholder questions, some empty answers and full-width spaces), then times each
loader in a fresh subprocess (so peak RSS, from ``resource.getrusage``, is that loader's alone), checks that
both keep exactly the same records (sha256 over every kept row, in order), and prints rows/s, the speed
ratio and each peak RSS against the input's size. Goals: >= 20x faster, peak RSS <= 4x the input.

It also measures the floor: a strict decode plus pyarrow's CSV parse of the same bytes, timed in the same
process as warm ``load_medical`` calls (alternating, median of ``--repeat``); the goal is load_medical <= 1.5x
the floor. A cold first call (a fresh process, nothing imported) is reported separately: it also pays
the imports (pyarrow, datasets, ...), which a notebook pays once.
``--baseline-rows`` lets the slow loader run on a subset (whole files, round-robin over departments); its rows/s is
extrapolated; the output says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEPARTMENTS = {
    "IM_内科": ["心血管科", "消化科", "呼吸科", "内分泌科", "神经内科", "肾内科"],
    "Surgical_外科": ["普外科", "骨科", "泌尿外科", "肛肠外科", "神经外科"],
    "Pediatric_儿科": ["小儿内科", "新生儿科", "小儿呼吸科", "儿童保健科"],
    "OAGD_妇产科": ["妇科", "产科", "计划生育科"],
}
ROWS_PER_FILE = 40_000
SYMPTOMS = [
    "头痛", "发烧", "咳嗽", "胸闷", "心慌", "胃痛", "腹泻", "便秘", "失眠", "乏力", "头晕", "恶心",
    "腰痛", "膝盖疼", "皮疹", "咽喉痛", "鼻塞", "耳鸣", "血压偏高", "血糖偏高", "手脚麻木", "食欲差",
]  # fmt: skip
DURATIONS = ["两天", "三天", "一周", "半个月", "一个月", "三个月", "半年", "一年多"]
QUESTIONS = [
    "需要做什么检查？", "应该吃什么药？", "严重吗？", "要不要去医院？", "平时要注意什么？",
    "是什么原因引起的？", "能自己好吗？", "饮食上要注意什么？", "需要手术吗？", "会不会传染？",
]  # fmt: skip
ADVICE = [
    "建议到正规医院就诊，由医生面诊后明确诊断",
    "平时注意休息，避免劳累，保证充足睡眠",
    "饮食宜清淡，少吃辛辣、油腻、生冷的食物",
    "可以先观察几天,如果症状加重要及时就医",
    "必要时查血常规、肝肾功能,以及相关影像学检查",
    "用药请遵医嘱，不要自行加量或停药",
    "如果出现高热不退、呼吸困难或意识不清，应立即就医",
    "适当运动，控制体重，戒烟限酒",
    "注意保暖，多喝温水，保持室内空气流通",
    '医生常说"三分治、七分养"，日常调理很重要',
    "复查时请带上以前的检查结果，方便医生对比",
    "儿童和老人症状变化快，更要密切观察",
]


def generate(root: Path, rows: int, seed: int = 3407) -> dict[str, int]:
    """Write ``rows`` GBK CSV rows under ``root/<department>/part-NN.csv``; returns what was injected."""
    import csv
    import io

    rng = random.Random(seed)
    folders = list(DEPARTMENTS)
    per_department = [
        rows // len(folders) + (1 if i < rows % len(folders) else 0) for i in range(len(folders))
    ]
    injected = {"rows": rows, "duplicate_rows": 0, "placeholder_questions": 0, "empty_answers": 0}
    serial = 0
    for folder, count in zip(folders, per_department, strict=True):
        subs = DEPARTMENTS[folder]
        written: list[tuple[str, str, str, str]] = []
        for part, start in enumerate(range(0, count, ROWS_PER_FILE)):
            n = min(ROWS_PER_FILE, count - start)
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(["department", "title", "ask", "answer"])
            for _ in range(n):
                draw = rng.random()
                if written and draw < 0.05:  # ~5% exact duplicate rows
                    row = written[rng.randrange(len(written))]
                    injected["duplicate_rows"] += 1
                else:
                    serial += 1
                    symptom = rng.choice(SYMPTOMS)
                    ask = f"我今年{rng.randint(1, 90)}岁，{symptom}{rng.choice(DURATIONS)}了（编号{serial}），{rng.choice(QUESTIONS)}"
                    sentences = rng.sample(ADVICE, rng.randint(3, 7))
                    if rng.random() < 0.15:  # a numbered list over several lines
                        answer = "\n".join(f"{i + 1}. {s}。" for i, s in enumerate(sentences))
                    else:
                        answer = "，".join(sentences) + "。"
                    if draw < 0.06:
                        ask, injected["placeholder_questions"] = "无", injected["placeholder_questions"] + 1
                    elif draw < 0.065:
                        answer, injected["empty_answers"] = "  ", injected["empty_answers"] + 1
                    elif draw < 0.09:
                        ask = f"\u3000{ask}  "  # full-width and trailing spaces
                    row = (rng.choice(subs), f"{symptom}怎么办", ask, answer)
                    written.append(row)
                writer.writerow(row)
            path = root / folder / f"part-{part:02d}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.getvalue().encode("gbk"))
    return injected


def tutorial_load(root: Path):
    """The row-by-row loader tutorials write: read_csv with an encoding fallback list, iterrows, a dict per row."""
    import pandas as pd
    from datasets import Dataset

    from kit.data.medical import TITLE_PLACEHOLDERS
    from kit.data.text import is_placeholder, normalise_text
    from kit.formatting.prompts import MEDICAL_INSTRUCTION

    records, seen = [], set()
    for folder in sorted(os.listdir(root)):
        department = folder.split("_", 1)[1] if "_" in folder else folder
        for name in sorted(os.listdir(root / folder)):
            if not name.endswith(".csv"):
                continue
            frame = None
            for encoding in ("utf-8", "gbk", "gb18030"):
                try:
                    frame = pd.read_csv(
                        root / folder / name, encoding=encoding, dtype=str, keep_default_na=False
                    )
                    break
                except UnicodeDecodeError:
                    continue
            for _, row in frame.iterrows():
                question, answer = normalise_text(row["ask"]), normalise_text(row["answer"])
                title = normalise_text(row["title"])
                if (
                    (not question or is_placeholder(question))
                    and len(title) >= 2
                    and not is_placeholder(title)
                    and title.lower() not in TITLE_PLACEHOLDERS
                ):
                    question = title  # a placeholder question whose title is a real one
                if not question or is_placeholder(question) or not answer or (question, answer) in seen:
                    continue
                seen.add((question, answer))
                records.append(
                    {
                        "instruction": MEDICAL_INSTRUCTION,
                        "input": question,
                        "output": answer,
                        "department": department,
                        "sub_department": normalise_text(row["department"]),
                        "title": title,
                    }
                )
    return Dataset.from_list(records)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _digest(dataset) -> str:
    digest = hashlib.sha256()
    for batch in dataset.iter(batch_size=10_000):
        names = sorted(batch)
        for values in zip(*(batch[n] for n in names), strict=True):
            digest.update(json.dumps(values, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def floor_load(root: Path) -> int:
    """The floor: each CSV strictly decoded (UTF-8, else GBK, else GB18030) and parsed by pyarrow; returns rows."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    rows = 0
    for path in sorted(root.rglob("*.csv")):
        raw = path.read_bytes()
        for codec in ("utf-8", "gbk", "gb18030"):
            try:
                text = raw.decode(codec)
                break
            except UnicodeDecodeError:
                continue
        data = text.encode("utf-8")
        header = data[: data.index(b"\n")].decode().strip().split(",")
        table = pacsv.read_csv(
            io.BytesIO(data),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in header}),
        )
        rows += table.num_rows
    return rows


def child_floor(root: Path, repeat: int) -> None:
    """Warm load_medical against the floor in this one process (alternating runs); one JSON line of medians."""
    import statistics

    import datasets  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from kit.data import load_medical

    load_medical(root)
    floor_load(root)  # warm-up: first-use costs are not part of either number
    floors, loads, floor_cpu, load_cpu = [], [], [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        floor_rows = floor_load(root)
        floors.append(time.perf_counter() - start)
        floor_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        _, report = load_medical(root)
        loads.append(time.perf_counter() - start)
        load_cpu.append(time.process_time() - cpu)
    print(json.dumps({"floor_s": statistics.median(floors), "load_s": statistics.median(loads),
                      "floor_cpu_s": statistics.median(floor_cpu), "load_cpu_s": statistics.median(load_cpu),
                      "floors": floors, "loads": loads, "floor_rows": floor_rows, "rows_read": report.rows_read}))


def child_cold(root: Path) -> None:
    """A fresh process, nothing imported: the first load_medical call, then a warm one; one JSON line."""
    start = time.perf_counter()
    from kit.data import load_medical

    load_medical(root)
    first = time.perf_counter() - start
    start = time.perf_counter()
    load_medical(root)
    print(json.dumps({"first_s": first, "warm_s": time.perf_counter() - start}))


def child(which: str, root: Path) -> None:
    """Run one loader in this (fresh) process and print one JSON line with time, memory and a digest."""
    import datasets  # noqa: F401  (imported before the clock starts, like a notebook would have)
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from kit.data import load_medical

    imports_mb = _peak_mb()
    start = time.perf_counter()
    if which == "kit":
        dataset, report = load_medical(root)
        rows_read = report.rows_read
    else:
        dataset = tutorial_load(root)
        rows_read = None
    seconds = time.perf_counter() - start
    peak_mb = _peak_mb()
    out = {"seconds": seconds, "rows_read": rows_read, "rows_kept": len(dataset), "imports_mb": imports_mb}
    out.update({"peak_mb": peak_mb, "digest": _digest(dataset)})
    print(json.dumps(out))


def run_child(which: str, root: Path, repeat: int = 3) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, "--root", str(root), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"{which} loader failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def subset(root: Path, target_rows: int, dest: Path) -> Path:
    """Links to whole files, taken round-robin over departments, until they hold >= ``target_rows`` rows."""
    per_folder = {f: sorted((root / f).glob("*.csv")) for f in sorted(os.listdir(root))}
    taken, index = 0, 0
    while taken < target_rows and any(index < len(v) for v in per_folder.values()):
        for folder, files in per_folder.items():
            if index < len(files) and taken < target_rows:
                (dest / folder).mkdir(parents=True, exist_ok=True)
                (dest / folder / files[index].name).symlink_to(files[index])
                with open(files[index], "rb") as handle:
                    taken += handle.read().count(b"\r\n") - 1  # rows end in CRLF; embedded newlines are LF
        index += 1
    return dest


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.csv"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=500_000, help="synthetic rows to generate (default 500000)"
    )
    parser.add_argument(
        "--baseline-rows", type=int, default=0, help="time the row-by-row loader on about this many rows"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="fresh-process runs of kit.load_medical (median shown)"
    )
    parser.add_argument("--keep", default=None, help="generate into this folder and keep it")
    parser.add_argument("--child", choices=["kit", "tutorial", "floor", "cold"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "floor":
        child_floor(Path(args.root), args.repeat)
        return 0
    if args.child == "cold":
        child_cold(Path(args.root))
        return 0
    if args.child:
        child(args.child, Path(args.root))
        return 0

    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / "medical"
        start = time.perf_counter()
        injected = generate(root, args.rows)
        size = _size(root)
        print(
            f"generated {args.rows:,} rows, {size / 2**20:.1f} MiB GBK in {len(list(root.rglob('*.csv')))} files "
            f"({time.perf_counter() - start:.1f} s): {injected}"
        )

        runs = sorted((run_child("kit", root) for _ in range(args.repeat)), key=lambda r: r["seconds"])
        kit = runs[len(runs) // 2]  # the median run (each in a fresh process)
        base_root, extrapolated = root, False
        if args.baseline_rows and args.baseline_rows < args.rows:
            base_root, extrapolated = subset(root, args.baseline_rows, Path(tmp) / "subset"), True
        tutorial = run_child("tutorial", base_root)
        kit_same = run_child("kit", base_root) if extrapolated else kit
        base_size = _size(base_root)
        base_rows = kit_same["rows_read"]

        same = kit_same["digest"] == tutorial["digest"] and kit_same["rows_kept"] == tutorial["rows_kept"]
        kit_rate = kit["rows_read"] / kit["seconds"]
        tutorial_rate = base_rows / tutorial["seconds"]
        print(
            f"\nsame kept records: {'yes' if same else 'NO'} "
            f"({kit_same['rows_kept']:,} of {base_rows:,} rows, sha256 {kit_same['digest'][:12]})"
        )
        print(
            "kit.load_medical runs (s): "
            + ", ".join(f"{r['seconds']:.2f}" for r in runs)
            + "; the median is shown"
        )
        print(
            f"{'loader':<22}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'peak RSS':>12}{'peak/input':>12}{'above imports':>15}"
        )
        for name, res, rows, nbytes in (
            ("kit.load_medical", kit, kit["rows_read"], size),
            ("row-by-row (iterrows)", tutorial, base_rows, base_size),
        ):
            print(
                f"{name:<22}{rows:>10,}{res['seconds']:>10.2f}{rows / res['seconds']:>12,.0f}"
                f"{res['peak_mb']:>10.0f}MB{res['peak_mb'] * 2**20 / nbytes:>11.2f}x"
                f"{(res['peak_mb'] - res['imports_mb']) * 2**20 / nbytes:>14.2f}x"
            )
        note = f" (row-by-row timed on {base_rows:,} rows and extrapolated as rows/s)" if extrapolated else ""
        ratio = kit_rate / tutorial_rate
        print(f"\nspeed-up: {ratio:.1f}x{note}; goal >= 20x: {'met' if ratio >= 20 else 'MISSED'}")
        mem = kit["peak_mb"] * 2**20 / size
        print(
            f"kit peak RSS / input size: {mem:.2f}x (of which the imported libraries: {kit['imports_mb']:.0f} MB); "
            f"goal <= 4x: {'met' if mem <= 4 else 'MISSED'}"
        )
        floor = run_child("floor", root, args.repeat)
        over = floor["load_s"] / floor["floor_s"]
        print(
            f"floor (strict decode + pyarrow CSV parse of the same bytes, {floor['floor_rows']:,} rows): "
            f"{floor['floor_s']:.2f} s; warm load_medical in the same process: {floor['load_s']:.2f} s "
            f"(medians of {args.repeat}); load_medical / floor = {over:.2f}x; goal <= 1.5x: "
            f"{'met' if over <= 1.5 else 'MISSED'}"
        )
        print(
            f"CPU time (all threads; less sensitive to other load on the machine): floor {floor['floor_cpu_s']:.2f} s, "
            f"load_medical {floor['load_cpu_s']:.2f} s, ratio {floor['load_cpu_s'] / floor['floor_cpu_s']:.2f}x"
        )
        cold = run_child("cold", root)
        print(
            f"cold first call (fresh process, nothing imported): {cold['first_s']:.2f} s = warm {cold['warm_s']:.2f} s "
            f"+ {cold['first_s'] - cold['warm_s']:.2f} s of imports and first-use set-up (paid once per process)"
        )
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
