"""The training helpers of lesson 03: config from the profile, label mask, preflight, callbacks, resume."""

import copy
import re
import sys
import warnings

import pytest
from transformers import TrainerCallback

from course_lib import runs, training
from course_lib.chat import EOS
from course_lib.hardware import Hardware
from course_lib.paths import data_dir
from course_lib.profiles import PROFILES, course_seed
from course_lib.tickets import load_tickets

from tiny_model import TINY, fresh_model, with_adapter

T4 = Hardware(cuda=True, gpu_name="Tesla T4", gpu_memory_gb=15.8, bf16=False, cpu_count=2, ram_gb=12.0)


@pytest.fixture(scope="module")
def rows():
    return load_tickets(data_dir() / "tickets" / "train_curated.jsonl")[:32]


def small_config(output_dir, **overrides):
    """A few steps of batch 4: the tiny profile's settings at test size."""
    settings = dict(output_dir=output_dir, max_steps=6, per_device_train_batch_size=4, per_device_eval_batch_size=4,
                    logging_steps=1, save_steps=3, eval_steps=3, disable_tqdm=True)
    settings.update(overrides)
    return training.sft_config(TINY, **settings)


# ---------------------------------------------------------------------------------------------------------
# the config


def test_config_follows_the_profile(tmp_path):
    args = training.sft_config(TINY, lesson="03", output_dir=tmp_path, seed=7)
    assert (args.bf16, args.fp16) == (False, False)  # TRL would default to bf16=True
    assert args.gradient_checkpointing is False and args.activation_checkpointing is False  # TRL: True
    assert args.per_device_train_batch_size == TINY.batch_size
    assert args.max_length == TINY.max_length
    assert args.max_steps == TINY.max_steps["03"]
    assert args.assistant_only_loss is True
    assert args.report_to == [] and args.seed == args.data_seed == course_seed(7)  # 7, or shifted by COURSE_SEED
    assert training.sft_config(TINY, output_dir=tmp_path, max_steps=5).max_steps == 5
    assert training.sft_config(TINY, output_dir=tmp_path, gradient_checkpointing=True).activation_checkpointing is True
    t4 = training.sft_config(PROFILES["t4"], output_dir=tmp_path)
    assert (t4.bf16, t4.fp16, t4.gradient_checkpointing) == (False, True, True)
    assert t4.per_device_train_batch_size == PROFILES["t4"].batch_size


def test_tensorboard_switch(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "has_tensorboard", lambda: True)
    assert training.sft_config(TINY, output_dir=tmp_path, tensorboard=True).report_to == ["tensorboard"]
    monkeypatch.setattr(runs, "has_tensorboard", lambda: False)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        training.sft_config(TINY, output_dir=tmp_path, tensorboard=True)


def test_config_for_a_lesson_without_a_budget_names_the_fix(tmp_path):
    with pytest.raises(KeyError, match="max_steps"):
        training.sft_config(TINY, lesson="99", output_dir=tmp_path)


@pytest.mark.parametrize("max_steps", [0, -5, 2.5, 20.0, "20", True])
def test_a_step_budget_that_is_not_a_positive_whole_number_is_an_error(tmp_path, rows, max_steps):
    # 0 used to become the profile's budget (180 steps), and -5 transformers' "train for 3 epochs"
    budget = TINY.max_steps["03"]
    error = (re.escape(f"max_steps must be a whole number of at least 1, not {max_steps!r}.") +
             rf".*max_steps=None for the profile's budget of {budget} steps")
    with pytest.raises(ValueError, match=error):
        training.sft_config(TINY, output_dir=tmp_path, max_steps=max_steps)
    with pytest.raises(ValueError, match=error):
        runs.run_settings(TINY, "03", output_dir=tmp_path, seed=0, max_steps=max_steps)
    with pytest.raises(ValueError, match=error):
        training.sft_settings(TINY, rows, max_steps=max_steps)
    with pytest.raises(ValueError, match=error):  # refused before any model is loaded or trained
        training.load_or_train(TINY, rows, folder=tmp_path / "model", max_steps=max_steps)
    assert runs.step_budget(TINY, "03", None) == budget and runs.step_budget(TINY, "03", 7) == 7


@pytest.mark.parametrize("eval_steps", [0, -1, 1.5])
def test_an_evaluation_interval_that_is_not_a_positive_whole_number_is_an_error(tmp_path, eval_steps):
    error = re.escape(f"eval_steps must be a whole number of at least 1, not {eval_steps!r}")
    with pytest.raises(ValueError, match=error):
        training.sft_config(TINY, output_dir=tmp_path, eval_steps=eval_steps)
    assert training.sft_config(TINY, output_dir=tmp_path, max_steps=50).eval_steps == 10  # None: 5 times a run
    with pytest.raises(ValueError, match="step must be a whole number of at least 1, not 0"):
        runs.StopAtStepCallback(0)


def test_empty_training_or_evaluation_rows_are_an_error_that_says_where_rows_come_from(tmp_path, rows, tokenizer):
    model, args = fresh_model(), small_config(tmp_path)
    with pytest.raises(ValueError, match="train_rows is empty: .*data/tickets/train_curated.jsonl"):
        training.sft_trainer(model, tokenizer, args, [])  # was a bare StopIteration from inside TRL
    with pytest.raises(ValueError, match="eval_rows is empty: .*or eval_rows=None to train without evaluating"):
        training.sft_trainer(model, tokenizer, args, rows, eval_rows=[])


def test_colab_warns_when_checkpoints_are_not_on_drive(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", object())
    with pytest.warns(UserWarning, match="/content/drive"):
        training.sft_config(TINY, output_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert runs.warn_if_not_persistent("/content/drive/MyDrive/sft") is False


def test_colab_warns_only_for_runs_that_save_checkpoints(tmp_path, monkeypatch):
    from course_lib import dpo

    monkeypatch.setitem(sys.modules, "google.colab", object())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        training.sft_config(TINY, output_dir=tmp_path, save_strategy="no")  # lessons 03/04's runs save nothing
        dpo.dpo_config(TINY, output_dir=tmp_path)  # nor does DPO by default
    with pytest.warns(UserWarning, match="/content/drive"):
        dpo.dpo_config(TINY, output_dir=tmp_path, save_strategy="steps")


# ---------------------------------------------------------------------------------------------------------
# the label mask, on a batch collated by the trainer


def test_label_mask_is_exactly_the_answers_and_eos(tmp_path, rows, tokenizer):
    trainer = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path), rows[:8])
    texts = training.check_label_mask(trainer, rows[:8], n=8)
    assert len(texts) == 8
    for text, row in zip(texts, rows[:8], strict=True):
        assert text == row["messages"][-1]["content"] + EOS
        assert row["messages"][1]["content"] not in text  # the customer's message is not trained on


def test_label_mask_check_fails_when_the_prompt_is_trained_on(tmp_path, rows, tokenizer):
    args = small_config(tmp_path, assistant_only_loss=False)
    trainer = training.sft_trainer(fresh_model(), tokenizer, args, rows[:4])
    with pytest.raises(AssertionError, match="should be the assistant's answer"):
        training.check_label_mask(trainer, rows[:4])


@pytest.mark.parametrize("wrapper", ["none", "lora with token rows"])
def test_plain_loss_equals_trls_fused_loss_and_the_models_own(tmp_path, rows, tokenizer, wrapper):
    # the course's trainer applies the LM head to the trained positions alone; TRL's own compute_loss uses its fused
    # LM head, and the model's own loss (used for evaluation) scores every position
    import torch
    from trl import SFTTrainer

    from course_lib import lora

    model = fresh_model()
    if wrapper != "none":
        model = with_adapter(model, lora.lora_config(TINY, rank=4, targets="all-linear",
                                                     token_ids=lora.answer_token_ids(tokenizer, rows[:8])))
    trainer = training.sft_trainer(model, tokenizer, small_config(tmp_path), rows[:8])
    assert isinstance(trainer, SFTTrainer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])
    model = trainer.model.train()
    with torch.no_grad():
        ours = trainer.compute_loss(model, dict(batch))
        # TRL's fused head reads lm_head.bias, which peft's wrapper of trained token rows lacks: plain model only
        trls = SFTTrainer.compute_loss(trainer, model, dict(batch)) if wrapper == "none" else None
        models_own, _ = trainer.compute_loss(model, dict(batch), return_outputs=True)
        halved = trainer.compute_loss(model, dict(batch), num_items_in_batch=2 * (batch["labels"][:, 1:] != -100).sum())
    if trls is not None:
        assert float(ours) == pytest.approx(float(trls), abs=1e-5)
    assert float(ours) == pytest.approx(float(models_own), abs=1e-5)
    assert float(halved) == pytest.approx(float(ours) / 2, abs=1e-5)  # gradient accumulation divides by all its tokens
    assert 1.0 < float(ours) < 10.0  # a real cross-entropy of the untrained model on the answers


def test_without_system_prompt_keeps_everything_else(rows):
    from course_lib.tickets import without_system_prompt

    stripped = without_system_prompt(rows[:3])
    for before, after in zip(rows[:3], stripped, strict=True):
        assert [m["role"] for m in after["messages"]] == ["user", "assistant"]
        assert after["messages"] == before["messages"][1:] and after["id"] == before["id"]
    assert rows[0]["messages"][0]["role"] == "system"  # the input rows are not changed


# ---------------------------------------------------------------------------------------------------------
# preflight: one test per mistake, each message naming the fix


@pytest.fixture(scope="module")
def model():
    return fresh_model()


def test_preflight_passes_the_shipped_setup(tmp_path, model, tokenizer, rows):
    training.preflight(model, tokenizer, small_config(tmp_path), rows)


def test_preflight_no_chat_template(tmp_path, model, tokenizer, rows):
    broken = copy.deepcopy(tokenizer)
    broken.chat_template = None
    with pytest.raises(training.PreflightError, match="no chat template.*CHAT_TEMPLATE"):
        training.preflight(model, broken, small_config(tmp_path), rows)


def test_preflight_pad_equals_eos(tmp_path, model, tokenizer, rows):
    broken = copy.deepcopy(tokenizer)
    broken.pad_token = broken.eos_token
    with pytest.raises(training.PreflightError, match="pad_token is the EOS token.*by token id.*distinct pad token"):
        training.preflight(model, broken, small_config(tmp_path), rows)


def test_pad_equals_eos_loses_the_eos_only_with_a_collator_that_masks_by_token_id(tokenizer, rows):
    """Lesson 03 section 4: transformers' collator masks every EOS when pad = EOS; TRL's keeps every label."""
    from transformers import DataCollatorForLanguageModeling
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling as TRLDataCollator

    careless = copy.deepcopy(tokenizer)
    careless.pad_token = careless.eos_token
    ids = careless.apply_chat_template(rows[0]["messages"], tokenize=True, return_dict=True)["input_ids"]
    eos = careless.eos_token_id
    by_token_id = DataCollatorForLanguageModeling(tokenizer=careless, mlm=False)([{"input_ids": ids}])
    by_position = TRLDataCollator(pad_token_id=careless.pad_token_id)([{"input_ids": ids}])
    assert by_token_id["labels"][0].tolist() == [-100 if t == eos else t for t in ids] and eos in ids
    assert by_position["labels"][0].tolist() == ids


def test_preflight_template_without_generation_markers(tmp_path, model, tokenizer, rows):
    broken = copy.deepcopy(tokenizer)
    broken.chat_template = broken.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    with pytest.raises(training.PreflightError, match=r"no \{% generation %\}.*every label would be masked"):
        training.preflight(model, broken, small_config(tmp_path), rows)


def test_preflight_example_with_every_label_masked(tmp_path, model, tokenizer, rows):
    no_answer = {"messages": rows[0]["messages"][:-1]}  # system and user only: nothing to train on
    with pytest.raises(training.PreflightError, match="Example 2 has every label masked"):
        training.preflight(model, tokenizer, small_config(tmp_path), [rows[0], rows[1], no_answer])


def test_preflight_bf16_on_a_gpu_without_it(tmp_path, model, tokenizer, rows):
    args = small_config(tmp_path, bf16=True)
    with pytest.raises(training.PreflightError, match="Tesla T4 has no native bfloat16.*fp16=True"):
        training.preflight(model, tokenizer, args, rows, hardware=T4)
    cpu = Hardware(cuda=False, gpu_name=None, gpu_memory_gb=None, bf16=False, cpu_count=2, ram_gb=8.0)
    with pytest.raises(training.PreflightError, match="no CUDA GPU.*bf16=False"):
        training.preflight(model, tokenizer, args, rows, hardware=cpu)


def test_preflight_example_longer_than_max_length(tmp_path, model, tokenizer, rows):
    longest = max(n for n, _ in training.example_lengths(tokenizer, rows))
    args = small_config(tmp_path, max_length=longest - 1)
    error = f"{longest} tokens, more than max_length={longest - 1}.*length filter"
    with pytest.raises(training.PreflightError, match=error):
        training.preflight(model, tokenizer, args, rows)


# ---------------------------------------------------------------------------------------------------------
# callbacks, on one short run with evaluation


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory, rows, tokenizer):
    plot = runs.LossPlotCallback(live=False)
    speed = runs.ThroughputCallback()
    memory = runs.PeakMemoryCallback()
    args = small_config(tmp_path_factory.mktemp("monitored"), max_steps=4, eval_steps=2, save_strategy="no")
    trainer = training.sft_trainer(fresh_model(), tokenizer, args, rows[:16], eval_rows=rows[16:20],
                                   callbacks=[plot, speed, memory])
    result = runs.train(trainer, resume=False)
    return trainer, result, plot, speed, memory


def test_loss_plot_records_train_and_eval_loss(monitored_run):
    trainer, result, plot, _, _ = monitored_run
    assert [step for step, _ in plot.train] == [1, 2, 3, 4]
    assert [step for step, _ in plot.eval] == [2, 4]
    assert plot.train[-1][1] == pytest.approx(result.final_loss)
    assert plot.live is False and not runs.in_notebook()


def test_loss_plot_draws_headless(monitored_run, capsys):
    plot = copy.copy(monitored_run[2])
    plot.live, plot._figure, plot._handle = True, None, None
    plot.draw()  # outside a notebook: draws on the Agg backend, shows nothing, raises nothing
    plot.draw()
    assert plot._figure is not None and len(plot._axes.lines) == 2


def test_a_notebook_progress_bar_is_replaced_by_one_that_redraws_every_few_seconds(tmp_path, rows, tokenizer,
                                                                                 monkeypatch):
    from transformers.utils import notebook

    redraws = []

    class Handle:  # what IPython's display(..., display_id=True) returns
        def update(self, *args, **kwargs):
            redraws.append("update")

    monkeypatch.setattr(notebook.disp, "display", lambda *args, **kwargs: redraws.append("display") or Handle())
    args = small_config(tmp_path, max_steps=4, eval_steps=2, save_strategy="no")
    trainer = training.sft_trainer(fresh_model(), tokenizer, args, rows[:16], eval_rows=rows[16:20],
                                   callbacks=[notebook.NotebookProgressCallback()])  # what a notebook gets
    bars = [c for c in trainer.callback_handler.callbacks if isinstance(c, notebook.NotebookProgressCallback)]
    assert len(bars) == 1 and type(bars[0]) is not notebook.NotebookProgressCallback
    seen = []

    class RecordRedrawInterval(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen.append(bars[0].training_tracker.update_every)

    trainer.add_callback(RecordRedrawInterval())
    runs.train(trainer, resume=False)
    assert seen == [runs.PROGRESS_EVERY_S] * 4  # transformers' own: 0.2 s
    assert redraws  # it still draws
    assert runs.calm_progress(trainer) is trainer  # no notebook bar left to replace: unchanged


def test_throughput_counts_steps_and_tokens(monitored_run):
    trainer, _, _, speed, _ = monitored_run
    assert speed.steps == 4
    assert speed.tokens == trainer.state.num_input_tokens_seen > 0
    assert speed.seconds > 0 and speed.tokens_per_second > speed.steps_per_second > 0
    assert "4 steps" in speed.summary()


def test_peak_memory_is_recorded(monitored_run):
    memory = monitored_run[4]
    assert memory.kind == "process RSS"
    # at least the model's weights (12 MB) and at most what the machine could hold
    assert 12 * 2**20 < memory.peak_bytes < 64 * 2**30
    assert memory.peak_bytes <= runs.peak_memory_bytes("cpu")


# ---------------------------------------------------------------------------------------------------------
# checkpoint and resume


@pytest.mark.parametrize("n_rows", [32, 10], ids=["within an epoch", "across epochs, with a short batch"])
def test_resume_after_interrupt_ends_with_the_same_loss(tmp_path, rows, tokenizer, n_rows):
    rows = rows[:n_rows]  # 10 rows in batches of 4: three steps an epoch, the third of 2 rows
    # 1) six steps straight
    config = small_config(tmp_path / "straight", eval_strategy="no")
    straight = training.sft_trainer(fresh_model(), tokenizer, config, rows)
    expected = runs.train(straight, resume=False)
    # 2) the same run, interrupted after step 3 (a checkpoint is saved there) ...
    interrupted_dir = tmp_path / "interrupted"
    stop = runs.StopAtStepCallback(3)
    first = training.sft_trainer(fresh_model(), tokenizer, small_config(interrupted_dir, eval_strategy="no"), rows,
                                 callbacks=[stop])
    assert runs.train(first, resume=False).global_step == 3
    assert runs.last_checkpoint(interrupted_dir).endswith("checkpoint-3")
    # 3) ... then resumed by a fresh trainer on fresh weights
    second = training.sft_trainer(fresh_model(), tokenizer, small_config(interrupted_dir, eval_strategy="no"), rows)
    resumed = runs.train(second)
    assert resumed.resumed_from.endswith("checkpoint-3")
    assert resumed.global_step == expected.global_step == 6
    assert resumed.final_loss == pytest.approx(expected.final_loss, rel=1e-5, abs=1e-6)

    def losses(trainer):
        return [e["loss"] for e in trainer.state.log_history if "loss" in e and e["step"] > 3]

    assert losses(second) == pytest.approx(losses(straight), rel=1e-5, abs=1e-6)


def interrupted_run(output_dir, rows, tokenizer, step=3, **overrides):
    """A run of small_config stopped after `step`, where a checkpoint is saved."""
    trainer = training.sft_trainer(fresh_model(), tokenizer, small_config(output_dir, eval_strategy="no", **overrides),
                                   rows, callbacks=[runs.StopAtStepCallback(step)])
    assert runs.train(trainer, resume=False).global_step == step
    return trainer


def test_checkpoints_record_their_settings(tmp_path, rows, tokenizer):
    trainer = interrupted_run(tmp_path, rows, tokenizer)
    import json

    saved = json.loads((tmp_path / "checkpoint-3" / runs.CHECKPOINT_SETTINGS_FILE).read_text())
    assert saved == runs.resume_settings(trainer)
    assert saved["model"] == TINY.model and saved["trainer"] == "SFTTrainer" and saved["adapter"] is None
    assert saved["data"] == runs.rows_fingerprint(rows)
    assert (saved["seed"], saved["max_steps"], saved["per_device_train_batch_size"]) == (course_seed(0), 6, 4)


@pytest.mark.parametrize("change, differs", [
    (dict(seed=1), f"seed: {course_seed(0)} in the checkpoint, {course_seed(1)} in this run"),
    (dict(learning_rate=1e-3), "learning_rate: 0.005 in the checkpoint, 0.001 in this run"),
    (dict(max_steps=2), "max_steps: 6 in the checkpoint, 2 in this run"),  # the issue: asked for 8, ended at 13
    (dict(per_device_train_batch_size=2), "per_device_train_batch_size: 4 in the checkpoint, 2 in this run"),
    (dict(rows=slice(1, None)), "data: "),
])
def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, rows, tokenizer, change, differs):
    interrupted_run(tmp_path, rows, tokenizer)
    before = sorted(p.name for p in tmp_path.iterdir())
    change = dict(change)
    run_rows = rows[change.pop("rows")] if "rows" in change else rows
    other = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no", **change),
                                 run_rows)
    with pytest.raises(runs.ResumeError, match=re.escape(differs)) as error:
        runs.train(other)  # resume=True is the default
    assert "another output_dir" in str(error.value) and "resume=False" in str(error.value)
    assert other.state.global_step == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing deleted or moved


def test_a_checkpoint_of_another_method_is_not_resumed(tmp_path, rows, tokenizer):
    from course_lib import lora

    interrupted_run(tmp_path, rows, tokenizer)
    adapter = with_adapter(fresh_model(), lora.lora_config(TINY))
    other = training.sft_trainer(adapter, tokenizer, small_config(tmp_path, eval_strategy="no"), rows)
    with pytest.raises(runs.ResumeError, match="adapter: None in the checkpoint, .*LORA"):
        runs.train(other)


def test_a_checkpoint_without_recorded_settings_is_not_resumed(tmp_path, rows, tokenizer):
    interrupted_run(tmp_path, rows, tokenizer)
    (tmp_path / "checkpoint-3" / runs.CHECKPOINT_SETTINGS_FILE).unlink()  # as trainer.train() alone saves it
    second = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no"), rows)
    with pytest.raises(runs.ResumeError, match="has no course_run.json"):
        runs.train(second)


def test_a_half_saved_newest_checkpoint_is_skipped_with_a_warning(tmp_path, rows, tokenizer):
    interrupted_run(tmp_path, rows, tokenizer)
    damaged = tmp_path / "checkpoint-5"  # killed while saving: weights written, trainer_state.json not yet
    damaged.mkdir()
    (damaged / "model.safetensors").write_bytes(b"")
    second = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no"), rows)
    with pytest.warns(UserWarning, match=re.escape(str(damaged)) + ".*no trainer_state.json"):
        resumed = runs.train(second)
    assert resumed.resumed_from.endswith("checkpoint-3") and resumed.global_step == 6
    assert damaged.is_dir()  # left for the learner to delete


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path, rows, tokenizer, capsys):
    import os
    import signal

    before = signal.getsignal(signal.SIGINT)  # Python's default_int_handler; ignored in a pytest-xdist worker

    class CtrlC(training.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 2:  # during step 3
                os.kill(os.getpid(), signal.SIGINT)

    trainer = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no"), rows,
                                   callbacks=[CtrlC()])
    with pytest.raises(KeyboardInterrupt):
        runs.train(trainer, resume=False)
    assert trainer.state.global_step == 3  # the step under way was finished
    assert runs.last_checkpoint(tmp_path).endswith("checkpoint-3")
    assert "resume=True" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works as before again
    second = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no"), rows)
    assert runs.train(second).global_step == 6


def test_a_keyboard_interrupt_raised_inside_training_saves_a_checkpoint(tmp_path, rows, tokenizer, capsys):
    class Interrupt(training.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt

    trainer = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no"), rows,
                                   callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        runs.train(trainer, resume=False)
    assert runs.last_checkpoint(tmp_path).endswith("checkpoint-2")
    assert "Interrupted at step 2" in capsys.readouterr().out
    second = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no"), rows)
    resumed = runs.train(second)
    assert resumed.resumed_from.endswith("checkpoint-2") and resumed.global_step == 6


# ---------------------------------------------------------------------------------------------------------
# Hub tokenizers: a distinct pad token and a template with generation markers


def hub_like_tokenizer(template: str):
    """The tiny tokenizer dressed as a Hub instruct tokenizer: pad is EOS, template without generation markers."""
    from course_lib.models import load_local_model

    tok = load_local_model(TINY.model_location)[1]
    tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    tok.chat_template = template
    return tok


CHATML_WITHOUT_MARKERS = ("{% for message in messages %}"
                          "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def test_prepare_tokenizer_fixes_pad_and_template_of_a_chatml_tokenizer(tmp_path, model, rows):
    from course_lib.chat import CHATML_TEMPLATE
    from course_lib.models import prepare_tokenizer

    tok = hub_like_tokenizer(CHATML_WITHOUT_MARKERS)
    with pytest.raises(training.PreflightError):
        training.preflight(model, tok, small_config(tmp_path), rows[:2])
    changes = prepare_tokenizer(tok)
    assert len(changes) == 3 and tok.padding_side == "left"
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id
    assert tok.chat_template == CHATML_TEMPLATE
    # the same text as the model's own template, now with the answer marked for the loss
    assert tok.apply_chat_template(rows[0]["messages"], tokenize=False) == \
        tok.apply_chat_template(rows[0]["messages"], tokenize=False, chat_template=CHATML_WITHOUT_MARKERS)
    training.preflight(model, tok, small_config(tmp_path), rows[:2])
    assert prepare_tokenizer(tok) == []  # nothing left to change


def test_prepare_tokenizer_leaves_other_templates_to_preflight(tmp_path, model, rows):
    from course_lib.models import prepare_tokenizer

    other = "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}"
    tok = hub_like_tokenizer(other)
    prepare_tokenizer(tok)
    assert tok.chat_template == other
    with pytest.raises(training.PreflightError, match="generation"):
        training.preflight(model, tok, small_config(tmp_path), rows[:2])



def test_native_template_of_the_tiny_profile_is_qwen25_instruct(tokenizer):
    from course_lib.models import native_chat_template

    template, source = native_chat_template(PROFILES["tiny"])
    assert "data/templates/qwen2.5-instruct.jinja" in source
    chat = [{"role": "user", "content": "Hello, how are you?"},
            {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
            {"role": "user", "content": "I'd like to show off how chat templating works!"}]
    # the rendering Qwen2.5-Instruct's template gives with no system message: its default system prompt first
    assert tokenizer.apply_chat_template(chat, tokenize=False, chat_template=template) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n"
        "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n")
    own = [{"role": "system", "content": "Triage."}, *chat[:1]]
    assert tokenizer.apply_chat_template(own, tokenize=False, chat_template=template, add_generation_prompt=True) == (
        "<|im_start|>system\nTriage.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\n")

# ---------------------------------------------------------------------------------------------------------
# batches of similar length


def batches_of(order, size):
    return [order[i : i + size] for i in range(0, len(order), size)]


@pytest.mark.parametrize("n_rows", [1000, 803, 7])
def test_length_grouped_batches_hold_every_row_once_with_little_padding(n_rows):
    import random

    lengths = [random.Random(n).randint(40, 300) for n in range(n_rows)]
    sampler = training.LengthGroupedBatches(lengths, batch_size=16, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(n_rows)) and len(sampler) == n_rows  # every row once an epoch
    batches = batches_of(first, 16)
    assert all(len(b) == 16 for b in batches[:-1])  # only the last batch may be short
    assert list(sampler) == first  # the order depends on the seed and the epoch alone
    sampler.set_epoch(1)
    assert list(sampler) != first or n_rows <= 16  # another epoch, another order (one batch has only one)
    if n_rows < 100:
        return
    shuffled = list(range(n_rows))
    random.Random(0).shuffle(shuffled)
    random_padding = training.padding_share(lengths, batches_of(shuffled, 16))
    grouped_padding = training.padding_share(lengths, batches)
    assert grouped_padding < random_padding / 10
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)  # batches in random order


def test_padding_share_counts_each_batch_padded_to_its_longest_row():
    assert training.padding_share([2, 4, 3, 3], [[0, 1], [2, 3]]) == pytest.approx(1 - 12 / 14)
    assert training.padding_share([5, 5], [[0, 1]]) == 0


def test_the_sft_trainer_batches_its_rows_by_length(tmp_path, rows, tokenizer):
    trainer = training.sft_trainer(fresh_model(), tokenizer, small_config(tmp_path, eval_strategy="no"), rows)
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    batches = training.train_batches(trainer)
    assert sorted(i for b in batches for i in b) == list(range(len(rows)))
    assert [len(b) for b in batches] == [4] * (len(rows) // 4)
    assert batches == training.train_batches(trainer) != training.train_batches(trainer, epoch=1)
    in_order = batches_of(list(range(len(rows))), 4)
    assert training.padding_share(lengths, batches) < training.padding_share(lengths, in_order)


# ---------------------------------------------------------------------------------------------------------
# saved weights, reused by later lessons


def test_settings_are_compared_exactly_and_a_damaged_file_means_train_again(tmp_path, rows):
    settings = training.sft_settings(TINY, rows, max_steps=2)
    assert not runs.saved_with(tmp_path, settings)  # nothing saved yet
    runs.write_settings(tmp_path, settings)
    assert runs.saved_with(tmp_path, settings)
    assert not runs.saved_with(tmp_path, training.sft_settings(TINY, rows[:-1], max_steps=2))  # other rows
    assert not runs.saved_with(tmp_path, training.sft_settings(TINY, rows, max_steps=3))
    (tmp_path / runs.SETTINGS_FILE).write_text("{not json")
    assert not runs.saved_with(tmp_path, settings)


def test_a_saved_full_sft_model_is_reused_only_with_the_same_settings(tmp_path, rows):
    import torch

    folder = tmp_path / "model"
    run = training.load_or_train(TINY, rows, folder=folder, max_steps=2)
    model, tokenizer = run.model, run.tokenizer
    assert run.trained and run.finished and run.message == f"trained from the start to step 2, saved to {folder}"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert not any(folder.glob("*.bin")) and not any(folder.glob("*.pt"))  # safetensors only
    batch = tokenizer(["My order has not arrived."], return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits
        shipped = fresh_model()(**batch).logits
    assert not torch.equal(expected, shipped)  # it was trained
    again = training.load_or_train(TINY, rows, folder=folder, max_steps=2)
    assert not again.trained and again.message == f"loaded from {folder}" and not again.model.training
    with torch.no_grad():
        assert torch.equal(again.model(**batch).logits, expected)
    assert training.load_or_train(TINY, rows, folder=folder, max_steps=2, seed=1).trained
    # another seed is another model: trained again, and saved over the old one
    assert runs.saved_with(folder, training.sft_settings(TINY, rows, max_steps=2, seed=1))


def load_or_train_functions():
    """Each method's `load_or_train` with its settings builder, and the keywords that change how it runs, not what."""
    from course_lib import dpo, lora, quantization

    return [(training.load_or_train, training.sft_settings, set()), (lora.load_or_train, lora.lora_settings, {"base"}),
            (quantization.load_or_train, quantization.qlora_settings, {"stop_at"}),
            (dpo.load_or_train, dpo.dpo_settings, set())]


def test_every_load_or_train_takes_the_same_arguments_as_its_settings_and_returns_a_saved_run():
    import inspect

    for load_or_train, settings, how in load_or_train_functions():
        call, built = inspect.signature(load_or_train).parameters, inspect.signature(settings).parameters
        name = load_or_train.__module__
        positional = [p for p, v in call.items() if v.kind is v.POSITIONAL_OR_KEYWORD]
        assert positional in (["profile", "train_rows"], ["profile", "train_rows", "pairs"]), name
        assert [p for p, v in built.items() if v.kind is v.POSITIONAL_OR_KEYWORD] == positional, name
        keywords = [p for p, v in call.items() if v.kind is v.KEYWORD_ONLY]
        assert keywords[:3] == ["folder", "seed", "max_steps"], name
        assert (call["seed"].default, call["max_steps"].default) == (0, None), name
        # the settings builder takes every keyword that decides the weights, in the same order, with the same defaults
        keyword_only = [p for p, v in built.items() if v.kind is v.KEYWORD_ONLY]
        assert [p for p in keywords[1:] if p not in how] == keyword_only, name
        assert all(call[p].default == built[p].default for p in built if p in call), name
        assert str(inspect.signature(load_or_train).return_annotation).endswith("SavedRun"), name
        assert settings.__name__ in ("sft_settings", "lora_settings", "qlora_settings", "dpo_settings")


def test_a_saved_run_is_loaded_when_its_settings_match_and_trained_otherwise(tmp_path):
    class Model:
        training = True

        def eval(self):
            self.training = False
            return self

    settings, calls = {"seed": 0}, []

    def train(folder):
        calls.append(folder)
        folder.mkdir(parents=True)
        runs.write_settings(folder, settings)
        return runs.SavedRun(Model(), "tokenizer", trained=True, message="trained")

    folder = tmp_path / "model"
    first = runs.saved_run(folder, settings, load=lambda f: (Model(), "loaded tokenizer"), train=train)
    assert (first.trained, first.message, first.finished, first.model.training) == (True, "trained", True, False)
    again = runs.saved_run(folder, settings, load=lambda f: (Model(), "loaded tokenizer"), train=train)
    assert (again.trained, again.tokenizer, again.message) == (False, "loaded tokenizer", f"loaded from {folder}")
    assert not again.model.training and calls == [folder]  # in eval mode, and trained once
    other = runs.saved_run(folder, {"seed": 1}, load=lambda f: (Model(), ""), train=lambda f: runs.SavedRun(
        None, "tokenizer", trained=True, message="stopped at step 1 of 2: call again to finish"))
    assert other.trained and not other.finished  # a run stopped part way (QLoRA's stop_at) has no model yet


LOCK_HOLDER = """
import sys
from course_lib import runs, training
with runs.saved_run_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.readline()
"""

TRAIN_ONCE = """
import sys
from course_lib import runs, training
from course_lib.paths import data_dir
from course_lib.profiles import PROFILES
from course_lib.tickets import load_tickets

rows = load_tickets(data_dir() / "tickets" / "train_curated.jsonl")[:32]
run = training.load_or_train(PROFILES["tiny"], rows, folder=sys.argv[1], max_steps=2)
print("trained" if run.trained else "loaded")
"""


def test_a_saved_run_lock_makes_another_process_wait_and_is_reentrant_within_one(tmp_path):
    import subprocess
    import threading

    folder = tmp_path / "model"
    with runs.saved_run_lock(folder), runs.saved_run_lock(folder):  # taken again inside: no deadlock
        pass
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        entered = threading.Event()

        def take():
            with runs.saved_run_lock(folder):
                entered.set()

        waiter = threading.Thread(target=take)
        waiter.start()
        assert not entered.wait(1.0)  # the other process holds it: this one waits
        holder.stdin.write("\n")
        holder.stdin.flush()
        waiter.join()
        assert entered.is_set()
    finally:
        holder.stdin.close()
        holder.wait()


def test_two_processes_that_want_the_same_model_at_once_train_it_once(tmp_path):
    import subprocess

    folder = str(tmp_path / "model")
    runs = [subprocess.Popen([sys.executable, "-c", TRAIN_ONCE, folder], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    said = sorted(run.communicate()[0].strip().splitlines()[-1] for run in runs)
    assert [run.returncode for run in runs] == [0, 0]
    assert said == ["loaded", "trained"]


def test_a_folder_being_saved_again_matches_no_settings_until_it_is_complete(tmp_path, rows, tokenizer, monkeypatch):
    settings = training.sft_settings(TINY, rows, max_steps=2)
    model = fresh_model()
    runs.save_model(model, tokenizer, tmp_path, settings)
    assert runs.saved_with(tmp_path, settings)
    seen = []
    monkeypatch.setattr(type(tokenizer), "save_pretrained",
                        lambda self, folder, **kwargs: seen.append(runs.saved_with(folder, settings)))
    runs.save_model(model, tokenizer, tmp_path, settings)
    assert seen == [False]  # while the weights were written, the old settings were gone
    assert runs.saved_with(tmp_path, settings)


# ---------------------------------------------------------------------------------------------------------
# mixed precision on the GPU profiles: float32 master weights under 16-bit autocast, replayed on the CPU


def gpu_profile_on_cpu(name):
    """A GPU profile's row (dtype, fp16/bf16, learning rates, rank) with the tiny model on the CPU: no download."""
    import dataclasses

    return dataclasses.replace(PROFILES[name], model=TINY.model, needs_cuda=False)


def gpu_trainer(method, profile, rows, tmp_path):
    """The trainer the lessons build for `method` on `profile`, with the model loaded in the profile's dtype."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training

    from course_lib import dpo, lora, quantization
    from course_lib.models import load_local_model
    from course_lib.paths import data_path

    if method == "qlora":
        model, tokenizer = quantization.load_quantized(profile, bits=4)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model, tokenizer = load_local_model(profile.model_location, dtype=profile.dtype)
        assert {p.dtype for p in model.parameters()} == {getattr(torch, profile.dtype)}  # loaded as the lessons load it
    if method == "dpo":
        pairs = dpo.trl_rows(dpo.load_preferences(data_path("tickets", "preferences.jsonl"))[:4])
        return dpo.dpo_trainer(model, tokenizer, profile, pairs, output_dir=tmp_path, max_steps=1)
    config = training.sft_config(profile, output_dir=tmp_path, max_steps=1, per_device_train_batch_size=2,
                                 disable_tqdm=True)
    if method != "full":
        token_ids = lora.answer_token_ids(tokenizer, rows)
        model = get_peft_model(model, lora.lora_config(profile, token_ids=token_ids))
    return training.sft_trainer(model, tokenizer, config, rows[:4])


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "dpo"])
@pytest.mark.parametrize("profile_name", ["t4", "large"])
def test_gpu_profiles_train_float32_master_weights_under_autocast(tmp_path, rows, profile_name, method):
    import torch

    profile = gpu_profile_on_cpu(profile_name)
    trainer = gpu_trainer(method, profile, rows, tmp_path)
    half = getattr(torch, profile.dtype)
    assert (trainer.args.fp16, trainer.args.bf16) == (half == torch.float16, half == torch.bfloat16)
    trainable = {name: p for name, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and {p.dtype for p in trainable.values()} == {torch.float32}, \
        {name: p.dtype for name, p in trainable.items() if p.dtype != torch.float32}
    if method in ("lora", "dpo"):  # the frozen base stays in the profile's 16 bits
        assert any(p.dtype == half for p in trainer.model.parameters() if not p.requires_grad)
    # one optimiser step as accelerate takes it on a GPU with fp16: scaled loss, unscale, step
    optimizer = trainer.create_optimizer()
    batch = next(iter(trainer.get_train_dataloader()))
    scaler = torch.amp.GradScaler("cpu")
    trainer.model.train()
    with torch.autocast("cpu", dtype=half):
        loss = trainer.compute_loss(trainer.model, batch)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # raises "Attempting to unscale FP16 gradients." for a float16 trainable weight
    scaler.step(optimizer)
    scaler.update()
    assert {p.grad.dtype for p in trainable.values() if p.grad is not None} == {torch.float32}
    assert {p.dtype for p in trainable.values()} == {torch.float32}  # still master weights after the step


def test_the_tiny_profile_keeps_its_float32_model_as_it_is(tmp_path, rows, tokenizer):
    model = fresh_model()
    trainer = training.sft_trainer(model, tokenizer, small_config(tmp_path), rows)
    assert trainer.model is model and not (trainer.args.fp16 or trainer.args.bf16)
    assert training.upcast_trainable(model) == 0  # nothing to cast: everything is float32 already
