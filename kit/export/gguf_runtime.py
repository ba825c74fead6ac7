"""Run a GGUF the way llama.cpp does, from Python: greedy answers and next-token log-probabilities.

It uses the ``libllama`` that ``kit llama-cpp`` built and llama-cpp-python's ctypes bindings of the same tree
(:mod:`kit.builders.llama_cpp`). Each run is a child process (``python -m kit.export.gguf_runtime REQUEST.json``), so
llama.cpp's native logging and memory stay out of the notebook's kernel: :func:`run_gguf` writes the request,
starts the child and reads back JSON (token ids) and a ``.npy`` (log-probabilities at each prompt's end).
The prompts are tokenized by llama.cpp itself (special tokens parsed, no BOS added: the prompts are rendered
already), as Ollama or llama-cli would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.errors import KitError, RunFailed


def default_threads() -> int:
    """``$KIT_LLAMA_THREADS``, else half the cores: llama.cpp's threads spin while they wait, and on a busy 2-core
    machine two of them ran 20x slower than one (140 s against 7 s for 128 tokens)."""
    return int(os.environ.get("KIT_LLAMA_THREADS", 0)) or max(1, (os.cpu_count() or 2) // 2)


def run_gguf(gguf_file: str | Path, prompts: Sequence[str], *, max_new_tokens: int, stop_ids: Sequence[int],
             threads: int | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Greedy answers of ``gguf_file`` to ``prompts``: ``{"prompt_ids", "answer_ids", "logprobs" (n x vocab),
    "seconds"}``; generation stops at any of ``stop_ids`` or after ``max_new_tokens``."""
    import numpy as np

    from kit.builders.llama_cpp import find_build

    build = find_build()
    if build is None:
        raise KitError("running a GGUF needs the kit's llama.cpp build. Fix: kit llama-cpp (once per machine)")
    with tempfile.TemporaryDirectory(prefix="kit-gguf-run-") as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({
            "gguf": str(gguf_file), "prompts": list(prompts), "max_new_tokens": max_new_tokens,
            "stop_ids": [int(i) for i in stop_ids], "threads": threads or default_threads(),
            "python_dir": str(build.python_dir), "out": tmp,
        }), encoding="utf-8")
        result = subprocess.run([sys.executable, "-m", "kit.export.gguf_runtime", str(request)], capture_output=True,
                                text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            raise RunFailed(f"running {gguf_file} in llama.cpp failed (exit {result.returncode}): "
                            f"{lines[-1] if lines else 'no output'}")
        response = json.loads((Path(tmp) / "response.json").read_text(encoding="utf-8"))
        response["logprobs"] = np.load(Path(tmp) / "logprobs.npy")
    return response


def _serve(request_path: str) -> None:
    """The child process: load the GGUF, answer every prompt greedily, write response.json and logprobs.npy."""
    import ctypes

    import numpy as np

    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    sys.path.insert(0, request["python_dir"])
    import llama_cpp.llama_cpp as ll

    quiet = ll.llama_log_callback(lambda level, text, data: None)
    ll.llama_log_set(quiet, ctypes.c_void_p(0))
    ll.llama_backend_init()
    started = time.perf_counter()
    model = ll.llama_model_load_from_file(request["gguf"].encode(), ll.llama_model_default_params())
    if not model:
        raise SystemExit(f"llama.cpp could not load {request['gguf']}")
    vocab = ll.llama_model_get_vocab(model)
    n_vocab = ll.llama_vocab_n_tokens(vocab)

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 16
        buffer = (ll.llama_token * size)()
        count = ll.llama_tokenize(vocab, data, len(data), buffer, size, False, True)
        if count < 0:
            raise SystemExit(f"llama.cpp could not tokenize a prompt ({count})")
        return list(buffer[:count])

    prompt_ids = [tokenize(p) for p in request["prompts"]]
    longest = max((len(p) for p in prompt_ids), default=1)
    params = ll.llama_context_default_params()
    params.n_ctx = longest + request["max_new_tokens"] + 8
    params.n_batch = params.n_ctx
    params.n_ubatch = params.n_ctx
    params.n_threads = params.n_threads_batch = int(request["threads"])
    ctx = ll.llama_init_from_model(model, params)
    if not ctx:
        raise SystemExit("llama.cpp could not create a context")
    stops = set(request["stop_ids"])

    def step(tokens: list[int]) -> np.ndarray:
        array = (ll.llama_token * len(tokens))(*tokens)
        code = ll.llama_decode(ctx, ll.llama_batch_get_one(array, len(tokens)))
        if code != 0:
            raise SystemExit(f"llama_decode returned {code}")
        return np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)).astype(np.float64)

    answers, first = [], []
    for ids in prompt_ids:
        ll.llama_memory_clear(ll.llama_get_memory(ctx), True)
        logits = step(ids)
        shifted = logits - logits.max()
        first.append((shifted - np.log(np.exp(shifted).sum())).astype(np.float32))
        answer: list[int] = []
        while len(answer) < request["max_new_tokens"]:
            token = int(logits.argmax())
            if token in stops:
                break
            answer.append(token)
            if len(answer) == request["max_new_tokens"]:
                break
            logits = step([token])
        answers.append(answer)
    out = Path(request["out"])
    np.save(out / "logprobs.npy", np.stack(first) if first else np.zeros((0, n_vocab), dtype=np.float32))
    (out / "response.json").write_text(json.dumps({"prompt_ids": prompt_ids, "answer_ids": answers,
                                                   "seconds": round(time.perf_counter() - started, 2)}),
                                       encoding="utf-8")
    ll.llama_free(ctx)
    ll.llama_model_free(model)


if __name__ == "__main__":
    _serve(sys.argv[1])
