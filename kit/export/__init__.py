"""Export: the trained model out of the notebook, and proof that the exports answer like the adapter.

Offers :mod:`~kit.export.save` (merged 16-bit weights, GGUF, the Ollama Modelfile),
:mod:`~kit.export.ollama_template` (Modelfile templates written from the chat template and filled in as
Ollama does), :mod:`~kit.export.gguf_runtime` (a GGUF run from Python as llama.cpp runs it),
:mod:`~kit.export.parity` (the parity gate, ``kit parity``) and :mod:`~kit.export.share` (hub push, off by
default).
"""
