"""The data layer: loaders that clean and count, a load report with a quality summary, and a held-out split.

Every loader returns ``(datasets.Dataset, LoadReport)`` and records each file it reads in the run manifest.
A ``data_path`` may be a local file or folder (JSON/JSONL/CSV/parquet/Arrow, a save_to_disk folder), a hub
dataset id (``openai/gsm8k:main:train``) or a LLaMA-Factory registry entry (``registry:FILE:NAME``); every
loader takes ``columns={"instruction": "question", ...}``, and a load that keeps no row is a KitError.
Importing ``kit.data`` is light: pandas, pyarrow and datasets are imported only when a loader runs.
"""

from __future__ import annotations

from kit.data.alpaca import load_alpaca
from kit.data.chat import load_chat, template_inputs
from kit.data.gsm8k import extract_final_answer, load_gsm8k, strip_calculator_annotations
from kit.data.load import LOADERS, load_data
from kit.data.medical import load_medical
from kit.data.preference import load_preference
from kit.data.report import FileReport, LoadReport
from kit.data.split import train_holdout_split

__all__ = [
    "LOADERS",
    "FileReport",
    "LoadReport",
    "extract_final_answer",
    "load_alpaca",
    "load_chat",
    "load_data",
    "load_gsm8k",
    "load_medical",
    "load_preference",
    "strip_calculator_annotations",
    "template_inputs",
    "train_holdout_split",
]
