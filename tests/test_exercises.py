"""exercises/ is what solutions/ generates; every blank exercise fails at its own check cell with a hint;
checks teach."""

import json
import math

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from course_lib import exercise_checks as checks
from course_lib import exercisegen, nbtools
from course_lib.chat import IGNORE_INDEX
from course_lib.exercise_checks import ExerciseCheckFailed

from repo_files import ROOT

SOLUTIONS = exercisegen.solution_notebooks(ROOT)
EXERCISES = [(s.name, grade_id) for s in SOLUTIONS
             for grade_id in exercisegen.check_cells_of(nbtools.read(s)) if grade_id]


def test_lessons_01_to_07_have_solutions_and_exercises():
    names = {p.name[:2] for p in SOLUTIONS}
    assert {"01", "02", "03", "04", "05", "06", "07"} <= names
    assert all((ROOT / "exercises" / p.name).is_file() for p in SOLUTIONS)


def test_exercises_are_what_the_solutions_generate():
    found = exercisegen.stale(ROOT)
    assert not found, "\n".join(found) + "\nRun `make exercises` to regenerate exercises/ from solutions/."


def test_each_solution_has_three_to_five_graded_exercises_with_points():
    for path in SOLUTIONS:
        grades = exercisegen.check_cells_of(nbtools.read(path))
        assert 3 <= len(grades) <= 5, path.name
        assert all(points > 0 for points in grades.values()), path.name


def make_root(tmp_path, solution_cells):
    """A course root in tmp_path holding one solution notebook with `solution_cells` after a title."""
    for folder in ("course_lib", "data", "solutions", "exercises"):
        (tmp_path / folder).mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Exercises")] + solution_cells)
    path = tmp_path / "solutions" / "09_test.ipynb"
    nbformat.write(nb, str(path))
    return path


def solution_cell(text, grade_id="answer"):
    cell = nbformat.v4.new_code_cell(text)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                                 "solution": True, "task": False}
    return cell


def test_a_changed_solution_makes_the_exercises_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    path = make_root(tmp_path, [solution_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")])
    assert exercisegen.stale(tmp_path) == ["exercises/09_test.ipynb: missing"]
    assert exercisegen.main([]) == 0
    exercise = (tmp_path / "exercises" / "09_test.ipynb").read_text()
    assert "raise NotImplementedError()" in exercise and "return 1" not in exercise
    assert "exercises/09_test.ipynb" in exercise  # its own Colab badge
    assert exercisegen.stale(tmp_path) == []
    nb = nbtools.read(path)
    nb.cells[-1].source = nb.cells[-1].source.replace("return 1", "return 2")  # inside the fence: same exercise
    nbformat.write(nb, str(path))
    assert exercisegen.stale(tmp_path) == []
    nb.cells[-1].source = nb.cells[-1].source.replace("def f", "def g")
    nbformat.write(nb, str(path))
    assert exercisegen.stale(tmp_path) == ["exercises/09_test.ipynb: differs from what solutions/09_test.ipynb "
                                           "generates"]
    assert exercisegen.main(["--check"]) == 1


def test_a_fence_outside_a_solution_cell_is_an_error_naming_file_and_cell(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    path = make_root(tmp_path, [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    with pytest.raises(exercisegen.FenceError, match=r"solutions/09_test.ipynb: cell 1 has a solution fence"):
        exercisegen.generate(path)


def test_an_unclosed_fence_is_an_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    path = make_root(tmp_path, [solution_cell("def f():\n    ### BEGIN SOLUTION\n    return 1")])
    with pytest.raises(exercisegen.FenceError, match=r"(?i)solutions/09_test.ipynb: no end solution"):
        exercisegen.generate(path)


@pytest.fixture(scope="module")
def executed_exercises():
    """Every exercise notebook, executed as a learner gets it (errors kept in the outputs)."""
    done = {}
    for solution in SOLUTIONS:
        nb = nbtools.read(ROOT / "exercises" / solution.name)
        NotebookClient(nb, timeout=600, allow_errors=True, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "exercises")}}).execute()
        done[solution.name] = nb
    return done


def errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("notebook, grade_id", EXERCISES, ids=[f"{n[:2]}-{g}" for n, g in EXERCISES])
def test_blank_exercise_fails_at_its_own_check_cell_with_a_hint(executed_exercises, notebook, grade_id):
    nb = executed_exercises[notebook]
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    failed = errors(nb.cells[index])
    assert failed and failed[0].ename == "ExerciseCheckFailed", f"{notebook} {grade_id}: the check cell did not fail"
    assert "not written yet" in failed[0].evalue and "Hint:" in failed[0].evalue
    # the exercise's own cells (its solution cell and everything before the check) ran without an error
    before = [i for i, c in enumerate(nb.cells[:index]) if c.cell_type == "code" and errors(c)
              and not c.metadata.get("nbgrader", {}).get("grade")]
    assert before == [], f"{notebook}: cells {before} failed before the check cell {grade_id}"


# -------------------------------------------------------------------------------------------------------
# The checks name what is wrong and hint at the fix


def message_of(check, *args):
    with pytest.raises(ExerciseCheckFailed) as failed:
        check(*args)
    return str(failed.value)


def test_label_mask_check_names_the_prompt_tokens_kept(tokenizer):
    def keeps_everything(input_ids, tokenizer):
        return list(input_ids)

    encoded = tokenizer.apply_chat_template(checks.mask_conversations()[0], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
    prompt = [i for i, m in enumerate(encoded["assistant_masks"]) if not m]
    assert prompt[0] == 0 and len(prompt) > 3
    message = message_of(checks.check_label_mask, keeps_everything, tokenizer)
    assert f"your mask keeps {len(prompt)} prompt tokens: positions {checks.spans(prompt)} should be -100" in message
    assert checks.spans([0, 1, 2, 7]) == "0–2, 7"
    assert "Hint:" in message


def test_label_mask_check_says_the_eos_must_be_trained(tokenizer):
    def drops_eos(input_ids, tokenizer):
        encoded = tokenizer.apply_chat_template(checks.mask_conversations()[0], tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
        return [t if m and t != tokenizer.eos_token_id else IGNORE_INDEX
                for t, m in zip(input_ids, encoded["assistant_masks"], strict=True)]

    assert "never learns to stop" in message_of(checks.check_label_mask, drops_eos, tokenizer)


def test_loss_checks_spot_a_missing_shift_and_a_sum():
    import torch.nn.functional as F

    def unshifted(logits, labels):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)

    def summed(logits, labels):
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction="sum")

    assert "shift by one" in message_of(checks.check_shifted_loss, unshifted)
    assert "is the sum over tokens" in message_of(checks.check_shifted_loss, summed)


def test_pad_batch_check_says_padding_labels_must_be_ignored():
    def pads_labels_with_zero(rows, pad_id):
        longest = max(len(r["input_ids"]) for r in rows)
        grow = lambda values, fill: values + [fill] * (longest - len(values))  # noqa: E731
        return {"input_ids": torch.tensor([grow(r["input_ids"], pad_id) for r in rows]),
                "attention_mask": torch.tensor([grow([1] * len(r["input_ids"]), 0) for r in rows]),
                "labels": torch.tensor([grow(r["labels"], 0) for r in rows])}

    assert "padding positions must be -100" in message_of(checks.check_pad_batch, pads_labels_with_zero)


def test_dpo_checks_spot_a_mean_log_probability_a_missing_beta_and_swapped_answers():
    def mean_logps(logits, labels):
        total = checks.reference_answer_logps(logits, labels)
        return total / (labels[:, 1:] != IGNORE_INDEX).sum(-1)

    def no_beta(pc, pr, rc, rr, beta):
        return -torch.nn.functional.logsigmoid((pc - rc) - (pr - rr))

    def swapped(pc, pr, rc, rr, beta):
        return -torch.nn.functional.logsigmoid(beta * ((pr - rr) - (pc - rc)))

    assert "do not average" in message_of(checks.check_answer_logps, mean_logps)
    assert "multiply the margin by beta" in message_of(checks.check_dpo_loss, no_beta)
    assert "chosen minus rejected" in message_of(checks.check_dpo_loss, swapped)


def test_reward_stats_check_names_the_wrong_statistic():
    def accuracy_in_percent(pc, pr, rc, rr, beta):
        chosen, rejected = beta * (pc - rc), beta * (pr - rr)
        return {"rewards/chosen": chosen.mean().item(), "rewards/rejected": rejected.mean().item(),
                "rewards/margins": (chosen - rejected).mean().item(),
                "rewards/accuracies": 100 * (chosen > rejected).float().mean().item()}

    assert "rewards/accuracies is 50.0000, it should be 0.5000" in message_of(checks.check_reward_stats,
                                                                              accuracy_in_percent)


def test_evaluation_checks_spot_the_normal_approximation_raw_agreement_and_an_unpaired_interval():
    def normal(correct, n_boot, alpha, seed):
        p, n = sum(correct) / len(correct), len(correct)
        half = 1.96 * math.sqrt(p * (1 - p) / n)
        return p - half, p + half

    def raw_agreement(first, second):
        return sum(a == b for a, b in zip(first, second, strict=True)) / len(first)

    def unpaired(a, b, n_boot, seed):
        import numpy as np

        rng = np.random.default_rng(seed)
        diffs = sorted(float(np.mean(np.asarray(a)[rng.integers(0, len(a), len(a))])
                             - np.mean(np.asarray(b)[rng.integers(0, len(b), len(b))])) for _ in range(n_boot))
        return diffs[25], diffs[974]

    assert "normal approximation" in message_of(checks.check_bootstrap_interval, normal)
    assert "you returned the raw agreement" in message_of(checks.check_cohen_kappa, raw_agreement)
    assert "resample the same tickets for both systems" in message_of(checks.check_paired_interval, unpaired)


def test_cost_checks_spot_a_break_even_in_the_past_and_a_one_time_cost_counted_monthly():
    def negative_allowed(one_time_a, per_request_a, one_time_b, per_request_b):
        if per_request_a == per_request_b:
            return math.inf if one_time_a != one_time_b else 0.0
        return (one_time_b - one_time_a) / (per_request_a - per_request_b)

    def one_time_every_month(options, volume, months):
        return min(options, key=lambda o: months * (o.one_time + o.per_request * volume + o.per_month)).name

    assert "never cost the same" in message_of(checks.check_break_even, negative_allowed)
    assert "count the one-time cost once" in message_of(checks.check_cheapest, one_time_every_month)


def test_lora_checks_spot_a_scale_of_alpha_and_a_missing_update():
    def scaled_by_alpha(x, weight, bias, A, B, alpha):
        return x @ weight.T + bias + alpha * (x @ A.T @ B.T)

    def frozen(weight, A, B, alpha):
        return weight

    def counts_the_frozen_weight(shapes, rank):
        return sum(rank * (i + o) + i * o for o, i in shapes)

    assert "scale it by alpha / r" in message_of(checks.check_lora_forward, scaled_by_alpha)
    assert "is the frozen weight" in message_of(checks.check_lora_merge, frozen)
    assert "the frozen weights and biases do not count" in message_of(checks.check_lora_parameters,
                                                                       counts_the_frozen_weight)


def test_nf4_checks_spot_unscaled_weights_and_forgotten_scales():
    def unscaled(w, levels, block):
        blocks = w.reshape(-1, block)
        codes = torch.bucketize(blocks, (levels[1:] + levels[:-1]) / 2)
        return codes.to(torch.uint8), blocks.abs().amax(dim=1)

    def levels_only(codes, absmax, levels, shape):
        return levels[codes.long()].reshape(shape)

    assert "scale by the block's absmax first" in message_of(checks.check_quantize_nf4, unscaled)
    assert "multiply each block's levels" in message_of(checks.check_dequantize_nf4, levels_only)
    assert "bitsandbytes stores 4.5000" in message_of(checks.check_bits_per_weight, lambda block, double, nested: 4.0)


def test_qlora_checks_spot_an_unscaled_update_codes_without_scales_and_small_tensors():
    import bitsandbytes.functional as bnbf

    def unscaled(layer, lora_a, lora_b, scaling):
        return bnbf.dequantize_4bit(layer.weight.data, layer.weight.quant_state) + lora_b @ lora_a

    def codes_only(shape, dtype_bytes):
        projections = shape.num_layers * shape.linear_weights_per_layer
        return projections / 2 + dtype_bytes * (shape.parameters - projections)

    assert "without its scale" in message_of(checks.check_merge_qlora, unscaled)
    assert "dequantise it first" in message_of(checks.check_merge_qlora, lambda layer, a, b, s: layer.weight.data)
    assert "the codes alone, without their block scales" in message_of(checks.check_qlora_weight_bytes, codes_only)
    assert "min_8bit_size" in message_of(checks.check_adamw8bit_state_bytes,
                                         lambda numel: 2 * (numel + 4 * math.ceil(numel / 256) + 1024))


def test_curation_checks_score_against_the_planted_defects():
    def unnormalised(a, b):
        first = {a[i:i + 5] for i in range(max(1, len(a) - 4))}
        second = {b[i:i + 5] for i in range(max(1, len(b) - 4))}
        return len(first & second) / len(first | second)

    def adjacent_only(texts, threshold):
        return [(i, i + 1) for i in range(len(texts) - 1) if i % 2 == 0]

    def everything(texts, threshold):
        return [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]

    assert "after the same normalisation" in message_of(checks.check_similarity, unnormalised)
    message = message_of(checks.check_near_duplicates, lambda texts, threshold: [])
    assert "recall 0.00: you missed 30 of the 30 planted near duplicates" in message
    assert "are not planted duplicates" in message_of(checks.check_near_duplicates, everything)
    assert "you missed" in message_of(checks.check_near_duplicates, adjacent_only)
    assert "recall 0/94" in message_of(checks.check_redact_emails, lambda text: text)
    from course_lib.curation.pii import EMAIL

    def also_order_ids(text):
        return EMAIL.sub("<EMAIL>", text).replace("ORD-", "<ORDER>-")

    assert "was changed" in message_of(checks.check_redact_emails, also_order_ids)


def test_a_check_reports_an_error_in_the_learners_code_with_the_hint():
    def broken(first, second):
        return 1 / 0

    message = message_of(checks.check_cohen_kappa, broken)
    assert "`broken` raised ZeroDivisionError" in message and "Hint: kappa = (p_o - p_e)" in message


def test_check_cells_return_nothing_so_nbgrader_gives_full_points():
    assert checks.check_dpo_loss(lambda pc, pr, rc, rr, beta: -torch.nn.functional.logsigmoid(
        beta * ((pc - rc) - (pr - rr)))) is None


def test_solution_notebooks_are_json_in_the_repository_format():
    for path in SOLUTIONS:
        text = path.read_text(encoding="utf-8")
        assert text == json.dumps(json.loads(text), indent=1, ensure_ascii=False) + "\n", path.name
