"""kit.training.trainlog: a compact row every N steps with interval means, and no per-step dicts from the trainer."""

from __future__ import annotations

from types import SimpleNamespace

from kit.training.trainlog import IntervalLog, default_every, settings_line


def test_rows_hold_interval_means_not_single_batches() -> None:
    log = IntervalLog(every=3, metrics={"rewards/accuracies": "reward_acc"})
    printed = [log.add({"loss": float(step), "learning_rate": 0.1, "epoch": step / 6, "rewards/accuracies": 1.0},
                       step, 6) for step in range(1, 7)]
    assert printed[0] is None and printed[1] is None
    first = printed[2].splitlines()
    assert first[0].split() == ["step", "epoch", "loss", "lr", "reward_acc"]
    assert first[1].split() == ["3", "0.5000", "2.0000", "0.1000", "1.0000"]  # mean of losses 1, 2, 3
    assert printed[5].split() == ["6", "1.0000", "5.0000", "0.1000", "1.0000"]  # header only once
    assert [r["loss"] for r in log.rows] == [2.0, 5.0]


def test_last_step_always_prints_and_summary_line() -> None:
    log = IntervalLog(every=4)
    assert log.add({"loss": 1.0}, 1, 5) is None
    assert log.add({"loss": 3.0}, 5, 5) is not None  # the final step, though 5 % 4 != 0
    line = log.add({"train_runtime": 2.5, "train_loss": 2.0}, 5, 5)
    assert line.startswith("done: 5 steps in 2.5 s, mean training loss 2.0000")
    assert "训练结束" in IntervalLog(lang="zh").summary({"train_runtime": 1, "train_loss": 1.0}, 3)


def test_default_every_gives_about_ten_rows() -> None:
    assert default_every(60) == 6 and default_every(250) == 25 and default_every(3) == 1 and default_every(0) == 1


def test_settings_line_reads_the_trainer_arguments() -> None:
    args = SimpleNamespace(per_device_train_batch_size=4, gradient_accumulation_steps=1, learning_rate=3e-4,
                           lr_scheduler_type=SimpleNamespace(value="linear"), warmup_steps=5)
    state = SimpleNamespace(max_steps=36, num_train_epochs=1)
    line = settings_line(args, state, steps_per_epoch=48)
    assert "36 steps (0.75 epochs of 48 steps)" in line and "learning rate 0.0003 (linear" in line
    assert "学习率 0.0003" in settings_line(args, state, lang="zh")


def test_quiet_trainer_prints_rows_and_no_dicts(tiny_model_dir, tmp_path, capsys) -> None:
    from kit.training.methods import load_for_training  # unsloth before trl

    model, tokenizer, _ = load_for_training(str(tiny_model_dir), max_seq_length=64, load_in_4bit=False,
                                            lora_r=4, lora_alpha=4, seed=1, dtype="float32")
    from trl import SFTTrainer

    from kit.formatting.chat_format import sft_dataset
    from kit.training.config import sft_config
    from kit.training.trainlog import quiet

    records = [{"instruction": f"Say {i}.", "input": "", "output": f"{i} {i}"} for i in range(12)]
    trainer = SFTTrainer(model=model, processing_class=tokenizer,
                         train_dataset=sft_dataset(tokenizer, records, max_seq_length=64),
                         args=sft_config(str(tmp_path), max_seq_length=64, max_steps=4, per_device_train_batch_size=4,
                                         gradient_accumulation_steps=1, disable_tqdm=True))
    quiet(trainer, "sft", every=2)
    capsys.readouterr()
    trainer.train()
    out = capsys.readouterr().out
    assert "{'loss'" not in out and "'train_runtime'" not in out
    assert "training: 4 steps (1.33 epochs of 3 steps)" in out and "done: 4 steps" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [line.split()[0] for line in rows] == ["2", "4"]
