"""The preference loader: flat pairs and sharegpt conversations (with a system turn) into one shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data_fixtures import (
    PAIRS_EXPECTED,
    PAIRS_LINES,
    SHAREGPT_EXPECTED,
    SHAREGPT_PROMPTS,
    SHAREGPT_RECORDS,
    assert_invariant,
    counts,
    write_jsonl,
)

from kit.data import load_preference


def test_flat_and_sharegpt_in_one_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS_LINES)
    (tmp_path / "sharegpt.json").write_text(
        json.dumps(SHAREGPT_RECORDS, ensure_ascii=False), encoding="utf-8"
    )
    dataset, report = load_preference(tmp_path)
    assert_invariant(report)
    assert counts(report.file("pairs.jsonl")) == PAIRS_EXPECTED
    assert counts(report.file("sharegpt.json")) == SHAREGPT_EXPECTED
    assert report.file("sharegpt.json").fixed == {"from_sharegpt": 2}
    assert dataset.column_names == ["prompt", "chosen", "rejected"]
    rows = dataset.to_list()
    assert rows[:2] == [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
    ]
    assert [r["prompt"] for r in rows[2:]] == SHAREGPT_PROMPTS  # the system turn leads the prompt
    assert rows[2]["chosen"] == "The Pacific Ocean." and rows[3]["rejected"] == "等于3。"
    assert all(isinstance(v, str) for r in rows for v in r.values())


def test_openai_style_messages_and_list_responses(tmp_path: Path) -> None:
    record = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": {"role": "assistant", "content": "Go away."},
    }
    dataset, report = load_preference(
        write_jsonl(tmp_path / "p.jsonl", [record, {"prompt": 1, "chosen": [3], "rejected": "x"}])
    )
    assert_invariant(report)
    assert dataset.to_list() == [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}]
    assert report.skipped == {"bad_field_type": 1}


FOUR_SHAPES: list[Any] = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},  # 1 flat
    *SHAREGPT_RECORDS[:2],  # 2, 3 sharegpt (a system turn; a multi-turn prompt)
    {  # 4 Alpaca-style with system and history
        "instruction": "Translate",
        "input": "你好",
        "chosen": "Hello",
        "rejected": "Bye",
        "system": "You translate.",
        "history": [["Translate 谢谢", "Thanks"]],
    },
    {  # 5 chosen_messages / rejected_messages: the prompt is the shared part
        "chosen_messages": [
            {"role": "user", "content": "Tell me a joke."},
            {"role": "assistant", "content": "Why did the chicken cross the road?"},
        ],
        "rejected_messages": [
            {"role": "user", "content": "Tell me a joke."},
            {"role": "assistant", "content": "No."},
        ],
    },
    {  # 6 whole conversations under chosen/rejected (HH-style): same rule
        "chosen": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello, how can I help?"},
        ],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "What."}],
    },
    {  # 7 prompt_mismatch
        "chosen_messages": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "a"}],
        "rejected_messages": [{"role": "user", "content": "B?"}, {"role": "assistant", "content": "b"}],
    },
    {
        "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
        "chosen": "x",
        "rejected": "y",
    },  # 8
    {"instruction": "   ", "chosen": "a", "rejected": "b"},  # 9 empty_field
]
FOUR_SHAPES_EXPECTED = {
    "rows_read": 9,
    "rows_kept": 6,
    "skipped": {"empty_field": 1, "prompt_mismatch": 1, "prompt_not_on_user": 1},
}


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_four_shapes_into_the_conversational_form(tmp_path: Path) -> None:
    dataset, report = load_preference(write_jsonl(tmp_path / "p.jsonl", FOUR_SHAPES), chat=True)
    assert_invariant(report)
    assert counts(report.files[0]) == FOUR_SHAPES_EXPECTED
    assert report.files[0].fixed == {"from_alpaca": 1, "from_chosen_messages": 2, "from_sharegpt": 2}
    rows = dataset.to_list()
    assert rows[0] == {
        "prompt": [_user("What is 2+2?")],
        "chosen": [_assistant("4")],
        "rejected": [_assistant("5")],
    }
    assert rows[1]["prompt"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        _user("What is the largest ocean?"),
    ]
    assert rows[2]["prompt"] == [_user("你好"), _assistant("你好！有什么可以帮你？"), _user("1+1等于几？")]
    assert rows[3] == {
        "prompt": [
            {"role": "system", "content": "You translate."},
            _user("Translate 谢谢"),
            _assistant("Thanks"),
            _user("Translate\n\n你好"),
        ],
        "chosen": [_assistant("Hello")],
        "rejected": [_assistant("Bye")],
    }
    assert rows[4] == {
        "prompt": [_user("Tell me a joke.")],
        "chosen": [_assistant("Why did the chicken cross the road?")],
        "rejected": [_assistant("No.")],
    }
    assert rows[5]["prompt"] == [_user("Hi")] and rows[5]["rejected"] == [_assistant("What.")]
    assert report.skipped_rows(3)["prompt_mismatch"][0]["where"] == "line 7"


def test_four_shapes_flat_view_matches(tmp_path: Path) -> None:
    dataset, report = load_preference(write_jsonl(tmp_path / "p.jsonl", FOUR_SHAPES))
    assert counts(report.files[0]) == FOUR_SHAPES_EXPECTED
    rows = dataset.to_list()
    assert rows[3] == {
        "prompt": "You translate.\n\nUser: Translate 谢谢\n\nAssistant: Thanks\n\nUser: Translate\n\n你好",
        "chosen": "Hello",
        "rejected": "Bye",
    }
    assert rows[4] == {
        "prompt": "Tell me a joke.",
        "chosen": "Why did the chicken cross the road?",
        "rejected": "No.",
    }


def test_damaged_source_text_is_counted(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Where is the café?", "chosen": "The CafÃ© is on the corner.", "rejected": "No idea."},
        {"prompt": "Say it’s fine", "chosen": "Itâ€™s fine.", "rejected": "It is bad."},
        {"prompt": "Spell 'naïve'", "chosen": "na\ufffdve", "rejected": "naive"},
        {"prompt": "São Paulo?", "chosen": "A city in Brazil.", "rejected": "A fish."},  # clean accents
    ]
    _, report = load_preference(write_jsonl(tmp_path / "d.jsonl", rows))
    quality = report.quality()
    assert quality["mojibake"] == 2 and quality["replacement_chars"] == 1
    assert "replacement_chars (U+FFFD) 1, mojibake (e.g. Ã©) 2" in report.summary()
    _, chat_report = load_preference(write_jsonl(tmp_path / "d.jsonl", rows), chat=True)
    assert chat_report.quality()["mojibake"] == 2  # message lists are searched too


def test_prompt_column_mapping(tmp_path: Path) -> None:
    rows = [{"question": "Hi?", "good": "Hello.", "bad": "Go."}]
    dataset, _ = load_preference(
        write_jsonl(tmp_path / "m.jsonl", rows),
        columns={"prompt": "question", "chosen": "good", "rejected": "bad"},
    )
    assert dataset.to_list() == [{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go."}]


def test_ultrafeedback_and_hh_styles(tmp_path: Path) -> None:
    rows = [
        {  # UltraFeedback-style: a prompt column next to whole conversations; the conversations decide
            "prompt": "Name a color.",
            "chosen": [_user("Name a color."), _assistant("Blue.")],
            "rejected": [_user("Name a color."), _assistant("Seven.")],
        },
        {  # Anthropic HH: each side is the whole dialogue as one string
            "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A joke?\n\nAssistant: Knock knock.",
            "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A joke?\n\nAssistant: No.",
        },
    ]
    dataset, report = load_preference(write_jsonl(tmp_path / "u.jsonl", rows), chat=True)
    assert counts(report.files[0]) == {"rows_read": 2, "rows_kept": 2, "skipped": {}}
    assert report.files[0].fixed == {"from_chosen_messages": 1, "from_hh_text": 1}
    first, second = dataset.to_list()
    assert first == {
        "prompt": [_user("Name a color.")],
        "chosen": [_assistant("Blue.")],
        "rejected": [_assistant("Seven.")],
    }
    assert second["prompt"] == [_user("Hi"), _assistant("Hello!"), _user("A joke?")]
    assert (second["chosen"], second["rejected"]) == ([_assistant("Knock knock.")], [_assistant("No.")])
