"""Build a tiny Qwen2-shaped causal LM and a byte-level BPE tokenizer offline, for tests and smoke runs.

No hub access: the tokenizer is trained on the text under ``data/`` (plus a small built-in corpus so it
also builds from an empty folder), and the weights are random from a fixed seed. The result loads with
``FastLanguageModel.from_pretrained(DIR)`` like any checkpoint, so notebooks run unchanged on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from kit.paths import repo_root, sample_data_dir

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # also the EOS token: every chat turn and every formatted example ends with it

# ChatML with {% generation %} markers, so TRL's assistant_only_loss can build the assistant mask.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# A few lines in both languages so the tokenizer has merges for common words even without data/.
_BUILTIN_CORPUS = """Below is an instruction that describes a task. Write a response that appropriately completes the request.
### Instruction:
### Input:
### Response:
The answer is 18. Let's think step by step.
<reasoning>
</reasoning>
<answer>
</answer>
下面是一条描述任务的指令。请写出恰当完成该请求的回答。
### 指令：
### 输入：
### 回答：
你是一名专业的医疗助手。请回答以下医疗相关问题。
问题：
回答：
最终答案：
"""


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model: about 0.2M parameters, a few seconds to build on one core."""

    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 1024
    seed: int = 3407
    # A short causal-LM warm-up on the corpus: random weights give a flat ln(vocab) loss that LoRA can barely
    # move, while a few hundred steps make a model whose loss visibly falls when fine-tuned (~10 s on 2 cores).
    pretrain_steps: int = 200
    pretrain_batch: int = 8
    pretrain_seq_len: int = 64
    pretrain_lr: float = 5e-3


def corpus_files(data_dir: Path) -> list[Path]:
    """Text files under ``data_dir`` that feed the tokenizer, in a stable order."""
    suffixes = {".json", ".jsonl", ".csv", ".txt", ".md"}
    if not data_dir.is_dir():
        return []
    return sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _corpus(data_dir: Path) -> Iterator[str]:
    yield from _BUILTIN_CORPUS.splitlines()
    from kit.data.files import decode_bytes
    from kit.errors import KitError

    for path in corpus_files(data_dir):
        try:  # the loaders' strict codec order: UTF-8, then GBK / GB18030 (the sample medical CSVs are GBK)
            text, _codec = decode_bytes(path, path.read_bytes())
        except KitError:
            continue  # not text in any codec we know: nothing for a tokenizer to learn from
        yield from text.splitlines()


def train_tokenizer(data_dir: Path, vocab_size: int):
    """Train a byte-level BPE tokenizer (any byte sequence round-trips) with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD_TOKEN, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(data_dir), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
        padding_side="right",
    )


def pretrain(model, tokenizer, data_dir: Path, spec: TinyModelSpec) -> list[float]:
    """Train every weight on random windows of the corpus for ``spec.pretrain_steps`` steps; returns the losses."""
    import torch

    text = "\n".join(_corpus(data_dir))
    ids = torch.tensor(tokenizer.backend_tokenizer.encode(text).ids, dtype=torch.long)
    window = min(spec.pretrain_seq_len, len(ids) - 1)
    generator = torch.Generator().manual_seed(spec.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.pretrain_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / max(1, spec.pretrain_steps))
    model.train()
    losses = []
    for _ in range(spec.pretrain_steps):
        starts = torch.randint(0, len(ids) - window, (spec.pretrain_batch,), generator=generator)
        batch = torch.stack([ids[i : i + window] for i in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


def build_tiny_model(out_dir: str | Path, data_dir: str | Path | None = None, spec: TinyModelSpec | None = None) -> Path:
    """Write a tiny Qwen2 checkpoint + tokenizer to ``out_dir`` and return it. Deterministic for a seed."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    spec = spec or TinyModelSpec()
    out = Path(out_dir)
    data = Path(data_dir) if data_dir is not None else sample_data_dir()
    tokenizer = train_tokenizer(data, spec.vocab_size)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,  # the tokenizer has no BOS (like Qwen2): a config BOS would be "aligned" with a warning
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    torch.manual_seed(spec.seed)
    model = Qwen2ForCausalLM(config)
    losses = pretrain(model, tokenizer, data, spec) if spec.pretrain_steps > 0 else []
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    out.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one shard of 0.8 MB needs no progress bar
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    info = {"spec": asdict(spec), "vocab": len(tokenizer), "parameters": n_params,
            "pretrain_loss": [round(losses[0], 4), round(losses[-1], 4)] if losses else None, "corpus_files": [str(p) for p in corpus_files(data)]}
    (out / "kit_tiny_model.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def ensure_tiny_model(out_dir: str | Path | None = None) -> Path:
    """Return the tiny model directory, building it first if it is missing (cached under ``.cache/``)."""
    out = Path(out_dir) if out_dir is not None else repo_root() / ".cache" / "tiny-model"
    if not (out / "config.json").is_file() or not (out / "tokenizer.json").is_file():
        build_tiny_model(out)
    return out
