"""LLaMA-Factory dataset_info.json entries: each formatting, ranking, columns, tags, unsupported fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import assert_invariant, counts, write_jsonl

from kit.cli import main
from kit.data import load_alpaca, load_data
from kit.data.registry import read_entry
from kit.errors import KitError

ALPACA_ROWS = [
    {  # kept: system and history carried through
        "q": "And 3+3?",
        "ctx": "",
        "a": "6",
        "sys": "You are a calculator.",
        "hist": [["What is 1+1?", "2"], ["And 2+2?", "4"]],
    },
    {"q": "Translate", "ctx": "你好", "a": "Hello", "sys": "", "hist": []},  # kept
    {"q": "", "ctx": "", "a": "x", "sys": "", "hist": []},  # empty_instruction
]
ALPACA_RANKING_ROWS = [
    {"instruction": "Name a fruit", "input": "", "chosen": "Apple", "rejected": "Car"},
    {
        "instruction": "2+2?",
        "input": "Answer briefly.",
        "chosen": "4",
        "rejected": "4",
    },  # chosen_equals_rejected
]
SHAREGPT_ROWS = [
    {
        "msgs": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ]
    },
    {"msgs": [{"role": "user", "content": "Only a question"}]},  # ends_on_user
]
SHAREGPT_GLAIVE_ROWS = [
    {
        "conversations": [
            {"from": "human", "value": "Weather in Rome?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Rome"}}'},
            {"from": "observation", "value": '{"temp_c": 25}'},
            {"from": "gpt", "value": "25 °C."},
        ],
        "tools": '[{"name": "get_weather", "parameters": {"type": "object"}}]',
        "images": ["x.png"],
    }
]
SHAREGPT_RANKING_ROWS = [
    {
        "conversations": [{"from": "user", "value": "Best ocean?"}],
        "chosen": {"from": "bot", "value": "The Pacific."},
        "rejected": {"from": "bot", "value": "Lake Geneva."},
    }
]
REGISTRY = {
    "my_alpaca": {
        "file_name": "alpaca.jsonl",
        "columns": {"prompt": "q", "query": "ctx", "response": "a", "system": "sys", "history": "hist"},
    },
    "my_alpaca_pairs": {
        "file_name": "pairs.json",
        "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
    },
    "my_openai": {
        "file_name": "chat.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "msgs"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    "my_glaive": {
        "file_name": "glaive.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools", "images": "images"},
        "file_sha1": "0" * 40,
        "num_samples": 10,
    },
    "my_sharegpt_pairs": {
        "file_name": "sharegpt_pairs.jsonl",
        "formatting": "sharegpt",
        "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        "tags": {"user_tag": "user", "assistant_tag": "bot"},
    },
    "on_the_hub": {"hf_hub_url": "yahma/alpaca-cleaned", "split": "train"},
    "modelscope_only": {"ms_hub_url": "AI-ModelScope/alpaca-gpt4-data-zh"},
}


def _registry(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "alpaca.jsonl", ALPACA_ROWS)
    (tmp_path / "pairs.json").write_text(json.dumps(ALPACA_RANKING_ROWS), encoding="utf-8")
    write_jsonl(tmp_path / "chat.jsonl", SHAREGPT_ROWS)
    (tmp_path / "glaive.json").write_text(json.dumps(SHAREGPT_GLAIVE_ROWS), encoding="utf-8")
    write_jsonl(tmp_path / "sharegpt_pairs.jsonl", SHAREGPT_RANKING_ROWS)
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps(REGISTRY, indent=2), encoding="utf-8")
    return path


def test_alpaca_entry_with_system_and_history(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    dataset, report = load_data(f"registry:{registry}:my_alpaca")
    assert_invariant(report)
    assert report.kind == "alpaca"
    assert counts(report.files[0]) == {"rows_read": 3, "rows_kept": 2, "skipped": {"empty_instruction": 1}}
    assert dataset.column_names == ["instruction", "input", "output", "system", "history"]
    assert dataset[0] == {
        "instruction": "And 3+3?",
        "input": "",
        "output": "6",
        "system": "You are a calculator.",
        "history": [["What is 1+1?", "2"], ["And 2+2?", "4"]],
    }
    assert report.files[0].fixed == {"history_kept": 1, "system_kept": 1}
    from kit.formatting.prompts import to_messages

    assert [m["role"] for m in to_messages(dataset[0])] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert load_alpaca(f"registry:{registry}:my_alpaca")[0].to_list() == dataset.to_list()


def test_alpaca_ranking_entry(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    dataset, report = load_data(f"registry:{registry}:my_alpaca_pairs", chat=True)
    assert report.kind == "preference"
    assert counts(report.files[0]) == {
        "rows_read": 2,
        "rows_kept": 1,
        "skipped": {"chosen_equals_rejected": 1},
    }
    assert dataset[0] == {
        "prompt": [{"role": "user", "content": "Name a fruit"}],
        "chosen": [{"role": "assistant", "content": "Apple"}],
        "rejected": [{"role": "assistant", "content": "Car"}],
    }


def test_sharegpt_entry_openai_tags(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    dataset, report = load_data(f"registry:{registry}:my_openai")
    assert report.kind == "chat"
    assert counts(report.files[0]) == {"rows_read": 2, "rows_kept": 1, "skipped": {"ends_on_user": 1}}
    assert [m["role"] for m in dataset[0]["messages"]] == ["system", "user", "assistant"]


def test_sharegpt_entry_with_tools_and_unsupported_fields(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    dataset, report = load_data(f"registry:{registry}:my_glaive")
    assert counts(report.files[0]) == {"rows_read": 1, "rows_kept": 1, "skipped": {}}
    assert dataset[0]["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(dataset[0]["tools"])[0]["name"] == "get_weather"
    ignored = report.files[0].notes["registry_ignored"]
    assert ignored == [
        "file_sha1: not supported (not checked)",
        "num_samples: not supported (sampling)",
        "columns.images: not supported (multimodal; ignored)",
    ]


def test_sharegpt_ranking_entry_with_role_tags(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    dataset, report = load_data(f"registry:{registry}:my_sharegpt_pairs")
    assert counts(report.files[0]) == {"rows_read": 1, "rows_kept": 1, "skipped": {}}
    assert dataset[0] == {"prompt": "Best ocean?", "chosen": "The Pacific.", "rejected": "Lake Geneva."}


def test_entry_errors(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    with pytest.raises(KitError, match="no entry 'nope'; its entries are"):
        load_data(f"registry:{registry}:nope")
    with pytest.raises(KitError, match=r"no file_name or hf_hub_url \(only \['ms_hub_url'\]"):
        load_data(f"registry:{registry}:modelscope_only")
    with pytest.raises(KitError, match="is alpaca, which the alpaca loader reads, not the chat loader"):
        from kit.data import load_chat

        load_chat(f"registry:{registry}:my_alpaca")
    entry = read_entry(registry, "on_the_hub")
    assert (entry.kind, entry.path, entry.split) == ("alpaca", "yahma/alpaca-cleaned", "train")


def test_cli_registry_report_and_zero_rows_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = _registry(tmp_path)
    assert main(["data", "report", "--registry", str(registry), "my_glaive"]) == 0
    out = capsys.readouterr().out
    assert "chat data from" in out and "registry: columns.images: not supported" in out
    assert (
        main(["data", "report", "--registry", str(registry), "my_alpaca", "--json", "--show-skipped", "2"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["skipped_rows"]["empty_instruction"][0]["where"] == "line 3"
    # The same file without the registry's mapping keeps nothing: exit 2 and the fix in the message.
    assert main(["data", "report", str(tmp_path / "alpaca.jsonl"), "--kind", "alpaca"]) == 2
    err = capsys.readouterr().err
    assert "kept 0 of 3 rows" in err and "columns found: ['q', 'ctx', 'a', 'sys', 'hist']" in err
    assert "columns={'instruction': '...', 'output': '...'}" in err  # no alias to guess from: the form of the fix
    assert (
        main(
            [
                "data",
                "report",
                str(tmp_path / "alpaca.jsonl"),
                "--kind",
                "alpaca",
                "--columns",
                "instruction=q,output=a",
            ]
        )
        == 0
    )
