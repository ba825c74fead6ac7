"""Training: load a model, put a fine-tuning method on it, configure the trainer, log it readably.

Offers :mod:`~kit.training.model` (Unsloth's ``FastLanguageModel`` loading and LoRA, with the field's defaults),
:mod:`~kit.training.methods` (lora, dora, qlora, full, the PEFT methods by name; ``load_for_training``),
:mod:`~kit.training.config` (SFT/DPO/GRPO trainer configs, seeding, checkpoints and resume),
:mod:`~kit.training.memory` (GPU memory estimates before loading) and :mod:`~kit.training.trainlog`
(one table row every N steps).
"""
