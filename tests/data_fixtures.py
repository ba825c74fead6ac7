"""Builders for the data-layer tests: small files with one known quirk each, and their exact expected counts.

Every builder writes under a folder the test gives it (``tmp_path``), so no test depends on ``data/``.
"""

from __future__ import annotations

import atexit
import csv
import functools
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def tiny_tokenizer_dir() -> Path:
    """A folder holding the tiny model's tokenizer (byte-level BPE, eos <|im_end|>, ChatML with generation marks).

    Built with the same ``kit.builders.tiny.train_tokenizer`` that ``build_tiny_model`` uses, without the
    model (whose build now includes a short pretraining run), and trained on the built-in corpus only, so
    it does not depend on data/. Once per session; removed at exit.
    """
    from kit.builders.tiny import TinyModelSpec, train_tokenizer

    folder = Path(tempfile.mkdtemp(prefix="kit-tiny-tokenizer-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    train_tokenizer(folder / "no-data", TinyModelSpec().vocab_size).save_pretrained(folder / "tokenizer")
    return folder / "tokenizer"


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> Any:
    """The tiny tokenizer loaded through AutoTokenizer, as a notebook would load it (shared: do not mutate)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir())


HEADER = ("department", "title", "ask", "answer")
LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 1048576\n"
)


def csv_text(rows: list[tuple[str, ...]], header: tuple[str, ...] = HEADER) -> str:
    """CSV text the way spreadsheets and Python's csv module write it (CRLF rows, minimal quoting)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(
    path: Path, rows: list[tuple[str, ...]], *, encoding: str = "gbk", header: tuple[str, ...] = HEADER
) -> Path:
    """Write ``rows`` as CSV in ``encoding`` (``utf-8-sig`` gives a BOM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text(rows, header).encode(encoding))
    return path


# The department tree used by several tests, with the exact outcome it must give.
IM_ROWS = [
    ("心血管科", "高血压", "血压高怎么办？", "少吃盐,多运动,按时复查。"),  # 1 kept: quoted commas
    ("消化科", "胃痛", "胃痛怎么办？", "第一，规律饮食。\n第二，少喝酒。"),  # 2 kept: embedded newline
    ("呼吸科", "咳嗽", '他说"咳嗽已经两周了', "建议到呼吸科就诊。"),  # 3 kept: a stray " (written unquoted)
    (
        "心血管科",
        "\u3000心慌",
        "\u3000\u3000心慌  怎么办？  ",
        "  注意休息。\u3000",
    ),  # 4 kept: U+3000 and runs
    ("消化科", "无题", "无", "请补充问题。"),  # 5 placeholder_question
    ("呼吸科", "发烧", "发烧三天了怎么办？", "   "),  # 6 empty_answer
    (
        "心血管科",
        "高血压",
        "血压高怎么办？ ",
        "少吃盐,多运动,按时复查。",
    ),  # 7 duplicate of 1 after normalisation
    (
        "消化科",
        "飯後胃脹",
        "飯後胃脹怎麼辦？",
        "少食多餐〝注意〞。",
    ),  # 8 kept: traditional forms, punctuation
]
IM_EXPECTED = {
    "rows_read": 8,
    "rows_kept": 5,
    "skipped": {"placeholder_question": 1, "empty_answer": 1, "duplicate": 1},
}
SURGICAL_ROWS = [
    ("骨科", "骨折", "骨折后多久能走路？", "一般需要6到8周，遵医嘱复查。"),  # kept
    (
        "心血管科",
        "高血压",
        "血压高怎么办？",
        "少吃盐,多运动,按时复查。",
    ),  # duplicate of 内科 row 1 (other file)
    ("普外科", "阑尾炎", "阑尾炎一定要手术吗？", "需要医生评估。"),  # kept
]
SURGICAL_EXPECTED = {"rows_read": 3, "rows_kept": 2, "skipped": {"duplicate": 1}}
PEDIATRIC_ROWS = [("宝宝发烧38度怎么办？", "多喝水，观察精神状态。"), ("孩子不爱吃饭？", "")]
PEDIATRIC_EXPECTED = {"rows_read": 2, "rows_kept": 1, "skipped": {"empty_answer": 1}}


def medical_tree(root: Path) -> Path:
    """Three department folders: a GBK file with most quirks, a UTF-8-with-BOM file, aliased headers."""
    im = root / "IM_内科" / "im.csv"
    im.parent.mkdir(parents=True, exist_ok=True)
    # csv.writer would quote the stray " and double it; real files have it bare in an unquoted field.
    text = csv_text(IM_ROWS).replace('"他说""咳嗽已经两周了"', '他说"咳嗽已经两周了')
    assert '他说"咳嗽已经两周了,' in text
    im.write_bytes(text.encode("gbk"))
    write_csv(root / "Surgical_外科" / "surgical.csv", SURGICAL_ROWS, encoding="utf-8-sig")
    write_csv(
        root / "Pediatric_儿科" / "ped.csv",
        PEDIATRIC_ROWS,
        encoding="utf-8",
        header=(" Question ", "RESPONSE"),
    )
    return root


def gbk_deep_file(path: Path, target_offset: int = 100_000) -> tuple[Path, int, str]:
    """A GBK CSV valid as GB2312 for its first ~100 KB, then a row with 醫 (GBK, not GB2312).

    Returns (path, number of data rows, the text of the special row's question).
    """
    rows = []
    size = len(",".join(HEADER)) + 2
    n = 0
    while size < target_offset:
        row = (
            "内科",
            f"标题{n}",
            f"第{n}个问题：头痛发热怎么办？",
            f"第{n}个回答：多休息，多喝水，必要时就医。",
        )
        rows.append(row)
        size += len(",".join(row).encode("gbk")) + 2
        n += 1
    special = "醫生說頭痛要注意什麼？"  # traditional forms outside GB2312, inside GBK
    rows.append(("内科", "繁體", special, "注意休息。"))
    write_csv(path, rows, encoding="gbk")
    return path, len(rows), special


def mojibake_words() -> list[str]:
    """Chinese words whose UTF-8 bytes also decode (wrongly) as GBK with an even byte length."""
    words = []
    for word in (
        "头痛",
        "医生",
        "你好",
        "发烧",
        "咳嗽",
        "胃痛",
        "怎么",
        "感冒",
        "治疗",
        "休息",
        "喝水",
        "检查",
    ):
        raw = word.encode("utf-8")
        try:
            raw.decode("gbk")
        except UnicodeDecodeError:
            continue
        if len(raw) % 2 == 0:
            words.append(word)
    return words


def utf8_mojibake_file(path: Path) -> tuple[Path, list[str]]:
    """A UTF-8 CSV that also decodes without error as GBK (into mojibake): the codec order must pick UTF-8."""
    words = mojibake_words()
    rows = [
        ("科", words[i % len(words)], words[(i + 1) % len(words)], words[(i + 2) % len(words)])
        for i in range(3)
    ]
    # Only ASCII and words whose UTF-8 bytes pair up as GBK: the whole file is valid GBK too.
    rows = [("ab", r[1], r[2], r[3]) for r in rows]
    write_csv(path, rows, encoding="utf-8")
    return path, words


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    """Write JSON Lines; a ``str`` item is written raw (for broken lines), anything else as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(
        item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in lines
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


# Alpaca rows: one per quirk, with the outcome each must have.
ALPACA_LINES: list[Any] = [
    {"instruction": "  Say hi ", "input": "", "output": "Hi\n"},  # 1 kept, whitespace
    {"instruction": "翻译成英文", "input": "输入：你好", "output": "输出：Hello"},  # 2 kept, prefixes
    {
        "instruction": "翻译成英文",
        "input": "输入: 早上好",
        "output": "输出:Good morning",
    },  # 3 kept, ASCII colon
    {"instruction": "Greet {{name}}", "input": "", "output": "Hello {{name}}!"},  # 4 kept, placeholder
    {"instruction": "", "input": "x", "output": "y"},  # 5 empty_instruction
    {"instruction": "a", "input": "", "output": "   "},  # 6 empty_output
    {"instruction": "b", "input": "输入：", "output": "输出："},  # 7 empty_output (only a prefix)
    [1, 2],  # 8 not_an_object
    "{this is not json",  # 9 invalid_json
    {"instruction": "Say hi", "input": " ", "output": "Hi"},  # 10 duplicate of 1 after stripping
    {"instruction": "c"},  # 11 missing_field
    {"instruction": "d", "input": None, "output": "e"},  # 12 kept, null input → ""
    {"instruction": "f", "input": ["x"], "output": "g"},  # 13 bad_field_type
    {"instruction": "\u3000全角空格\u3000", "input": "", "output": "好"},  # 14 kept, U+3000
]
ALPACA_EXPECTED = {
    "rows_read": 14,
    "rows_kept": 6,
    "skipped": {
        "bad_field_type": 1,
        "duplicate": 1,
        "empty_instruction": 1,
        "empty_output": 2,
        "invalid_json": 1,
        "missing_field": 1,
        "not_an_object": 1,
    },
}

GSM8K_LINES: list[Any] = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May. "
        "How many clips did Natalia sell in “April and May”?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
    {"question": "How many minutes are in 18 hours?", "answer": "18*60 = <<18*60=1080>>1080\n#### 1,080"},
    {"question": "A big number?", "answer": "It is <<109200*1000=109200000>>109200000\n#### 109,200,000"},
    {
        "question": "The temperature was 4 and fell 15 degrees. What is it now?",
        "answer": "4-15 = <<4-15=-11>>-11\n#### -11",
    },
    {"question": "Half of 5?", "answer": "5/2 = <<5/2=2.5>>2.5\n#### 2.5"},
    {"question": "How much money?", "answer": "It costs $1,234.\n#### $1,234"},
    {"question": "Quoted answer?", "answer": "The answer is 42.\n#### “42”"},
    {"question": "No final line?", "answer": "The answer is 7."},
    {"question": "Words only?", "answer": "Many.\n#### many"},
    {"answer": "#### 3"},
    {"question": "How many minutes are in 18 hours?", "answer": "1080\n#### 1080"},
]
GSM8K_EXPECTED = {
    "rows_read": 11,
    "rows_kept": 7,
    "skipped": {"duplicate": 1, "missing_field": 1, "no_final_answer": 1, "non_numeric_answer": 1},
}
GSM8K_ANSWERS = ["72", "1080", "109200000", "-11", "2.5", "1234", "42"]

PAIRS_LINES: list[Any] = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},  # kept
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},  # kept
    {"prompt": "Same?", "chosen": "Yes.", "rejected": "Yes."},  # chosen_equals_rejected
    {"prompt": "Missing", "chosen": "a"},  # missing_field
    {"prompt": "  ", "chosen": "a", "rejected": "b"},  # empty_field
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},  # duplicate
]
PAIRS_EXPECTED = {
    "rows_read": 6,
    "rows_kept": 2,
    "skipped": {"chosen_equals_rejected": 1, "duplicate": 1, "empty_field": 1, "missing_field": 1},
}
SHAREGPT_RECORDS: list[Any] = [
    {
        "conversations": [
            {"from": "system", "value": "You are a helpful assistant."},
            {"from": "human", "value": "What is the largest ocean?"},
        ],
        "chosen": {"from": "gpt", "value": "The Pacific Ocean."},
        "rejected": {"from": "gpt", "value": "The Atlantic Ocean."},
    },
    {
        "conversations": [
            {"from": "human", "value": "你好"},
            {"from": "gpt", "value": "你好！有什么可以帮你？"},
            {"from": "human", "value": "1+1等于几？"},
        ],
        "chosen": {"from": "gpt", "value": "等于2。"},
        "rejected": {"from": "gpt", "value": "等于3。"},
    },
    {
        "conversations": [{"from": "narrator", "value": "Once upon a time"}],
        "chosen": {"from": "gpt", "value": "a"},
        "rejected": {"from": "gpt", "value": "b"},
    },
]
SHAREGPT_EXPECTED = {"rows_read": 3, "rows_kept": 2, "skipped": {"unknown_role": 1}}
SHAREGPT_PROMPTS = [
    "You are a helpful assistant.\n\nWhat is the largest ocean?",
    "User: 你好\n\nAssistant: 你好！有什么可以帮你？\n\nUser: 1+1等于几？",
]


def assert_invariant(report: Any) -> None:
    """rows_read == rows_kept + sum(skipped), per file and in total, and the dataset size matches."""
    for file in report.files:
        assert file.rows_read == file.rows_kept + sum(file.skipped.values()), file
    totals = report.totals
    assert totals["rows_read"] == totals["rows_kept"] + sum(totals["skipped"].values())
    if report.dataset is not None:
        assert len(report.dataset) == totals["rows_kept"]


def counts(file_report: Any) -> dict[str, Any]:
    """The three numbers a test compares against an ``*_EXPECTED`` dict."""
    return {
        "rows_read": file_report.rows_read,
        "rows_kept": file_report.rows_kept,
        "skipped": file_report.skipped,
    }
