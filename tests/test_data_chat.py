"""The conversation loader: sharegpt and OpenAI messages, content parts, tool calls, order rules, duplicates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from data_fixtures import assert_invariant, counts, write_jsonl

from kit.data import load_chat, template_inputs
from kit.errors import KitError

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]

# One row per rule, with the outcome each must have.
CHAT_ROWS: list[Any] = [
    {  # 1 kept: sharegpt with a system turn, two rounds
        "conversations": [
            {"from": "system", "value": "You are a helpful assistant."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello! "},
            {"from": "human", "value": "2+2?"},
            {"from": "gpt", "value": "4"},
        ]
    },
    {  # 2 kept: sharegpt tool use (function_call + observation) with a tools column
        "conversations": [
            {"from": "human", "value": "Weather in Paris?"},
            {
                "from": "function_call",
                "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}}),
            },
            {"from": "observation", "value": '{"temp_c": 21}'},
            {"from": "gpt", "value": "It is 21 °C in Paris."},
        ],
        "tools": json.dumps(WEATHER_TOOLS),
    },
    {  # 3 kept: OpenAI messages, content parts under text and value, a system column
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Translate:"}, {"type": "text", "value": "你好"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
        ],
        "system": "You translate Chinese to English.",
    },
    {  # 4 kept: OpenAI tool_calls (arguments as a JSON string), a tool result, tools as a list
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": -3}'},
            {"role": "assistant", "content": "-3 °C."},
        ],
        "tools": WEATHER_TOOLS,
    },
    {"messages": [{"role": "user", "content": "Anyone?"}]},  # 5 ends_on_user
    {  # 6 bad_role_order: two user turns in a row
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]
    },
    {"conversations": [{"from": "human", "value": "  "}, {"from": "gpt", "value": "x"}]},  # 7 empty_turn
    {
        "conversations": [{"from": "narrator", "value": "Once"}, {"from": "gpt", "value": "x"}]
    },  # 8 unknown_role
    {  # 9 bad_role_order: an observation without a function call before it
        "conversations": [
            {"from": "human", "value": "q"},
            {"from": "observation", "value": "{}"},
            {"from": "gpt", "value": "a"},
        ]
    },
    {  # 10 bad_tool_call: the function_call value is not JSON
        "conversations": [
            {"from": "human", "value": "q"},
            {"from": "function_call", "value": "get_weather(Paris)"},
            {"from": "observation", "value": "{}"},
            {"from": "gpt", "value": "a"},
        ]
    },
    {  # 11 non_text_content: an image part
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}]},
            {"role": "assistant", "content": "A cat."},
        ]
    },
    {"conversations": [], "tools": None},  # 12 empty_conversation
    {"dialog": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},  # 13 missing_field
    {  # 14 duplicate of 1 (same messages after stripping)
        "conversations": [
            {"from": "system", "value": "You are a helpful assistant."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "2+2?"},
            {"from": "gpt", "value": "4"},
        ]
    },
    {  # 15 bad_tools: tools is not JSON
        "conversations": [{"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}],
        "tools": "get_weather(city)",
    },
    {  # 16 bad_role_order: a system turn in the middle
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "system", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]
    },
]
CHAT_EXPECTED = {
    "rows_read": 16,
    "rows_kept": 4,
    "skipped": {
        "bad_role_order": 3,
        "bad_tool_call": 1,
        "bad_tools": 1,
        "duplicate": 1,
        "empty_conversation": 1,
        "empty_turn": 1,
        "ends_on_user": 1,
        "missing_field": 1,
        "non_text_content": 1,
        "unknown_role": 1,
    },
}


def _msg(role: str, content: str, tool_calls: Any = None) -> dict[str, Any]:
    return {"role": role, "content": content, "tool_calls": tool_calls}


def test_every_rule_exact_counts_and_records(tmp_path: Path) -> None:
    dataset, report = load_chat(write_jsonl(tmp_path / "chat.jsonl", CHAT_ROWS))
    assert_invariant(report)
    assert counts(report.files[0]) == CHAT_EXPECTED
    assert dataset.column_names == ["messages", "tools"]
    rows = dataset.to_list()
    assert rows[0] == {
        "messages": [
            _msg("system", "You are a helpful assistant."),
            _msg("user", "Hi"),
            _msg("assistant", "Hello!"),
            _msg("user", "2+2?"),
            _msg("assistant", "4"),
        ],
        "tools": None,
    }
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert rows[1]["messages"] == [
        _msg("user", "Weather in Paris?"),
        _msg("assistant", "", [call]),
        _msg("tool", '{"temp_c": 21}'),
        _msg("assistant", "It is 21 °C in Paris."),
    ]
    assert json.loads(rows[1]["tools"]) == WEATHER_TOOLS
    assert rows[2]["messages"] == [
        _msg("system", "You translate Chinese to English."),
        _msg("user", "Translate:\n你好"),
        _msg("assistant", "Hello"),
    ]
    assert rows[3]["messages"][1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }
    assert rows[3]["messages"][2] == _msg("tool", '{"temp_c": -3}')
    assert report.files[0].fixed == {"content_parts_joined": 1, "system_from_column": 1, "tool_calls": 2}


def test_skipped_rows_name_their_line(tmp_path: Path) -> None:
    _, report = load_chat(write_jsonl(tmp_path / "chat.jsonl", CHAT_ROWS))
    shown = report.skipped_rows(5)
    assert [r["where"] for r in shown["bad_role_order"]] == ["line 6", "line 9", "line 16"]
    assert shown["ends_on_user"][0]["where"] == "line 5" and "Anyone?" in shown["ends_on_user"][0]["row"]
    assert len(report.skipped_rows(1)["bad_role_order"]) == 1
    text = report.format_skipped(2)
    assert "bad_role_order (3 in total):" in text and f"{tmp_path / 'chat.jsonl'}, line 9" in text


def test_template_inputs_parse_arguments_and_tools(tmp_path: Path) -> None:
    dataset, _ = load_chat(write_jsonl(tmp_path / "chat.jsonl", CHAT_ROWS))
    messages, tools = template_inputs(dataset[1])
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ],
    }
    assert all("tool_calls" not in m for i, m in enumerate(messages) if i != 1)
    assert tools == WEATHER_TOOLS
    assert template_inputs(dataset[0])[1] is None


def test_renders_through_a_chat_template_with_tools(tmp_path: Path) -> None:
    from data_fixtures import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    dataset, _ = load_chat(write_jsonl(tmp_path / "chat.jsonl", CHAT_ROWS))
    for row in dataset:
        messages, tools = template_inputs(row)
        text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
        assert messages[-1]["content"] in text


def test_column_mapping_and_zero_rows_error(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"dialog": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
    )
    with pytest.raises(KitError) as info:
        load_chat(path)
    message = str(info.value)
    assert "kept 0 of 1 rows (skipped: missing_field=1)" in message
    assert "columns found: ['dialog']" in message and "messages/conversations" in message
    assert "columns={'messages': 'dialog'}" in message and "--columns messages=dialog" in message
    dataset, report = load_chat(path, columns={"messages": "dialog"})
    assert len(dataset) == 1 and report.rows_kept == 1


def test_sharegpt_tags_from_a_registry_entry(tmp_path: Path) -> None:
    rows = [{"chat": [{"speaker": "Q", "text": "hi"}, {"speaker": "A", "text": "hello"}]}]
    tags = {"role_tag": "speaker", "content_tag": "text", "user_tag": "Q", "assistant_tag": "A"}
    dataset, _ = load_chat(write_jsonl(tmp_path / "t.jsonl", rows), columns={"messages": "chat"}, tags=tags)
    assert dataset[0]["messages"] == [_msg("user", "hi"), _msg("assistant", "hello")]


def test_duplicates_are_kept_when_asked_and_quality_sees_them(tmp_path: Path) -> None:
    rows = [CHAT_ROWS[0], CHAT_ROWS[0], CHAT_ROWS[2]]
    dataset, report = load_chat(write_jsonl(tmp_path / "d.jsonl", rows), dedupe=False)
    assert len(dataset) == 3 and report.skipped == {}
    assert report.quality()["duplicates"] == {"skipped": 0, "remaining": 1}


def test_empty_json_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(KitError, match="no rows"):
        load_chat(path)
