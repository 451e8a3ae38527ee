"""The checks of the exercises in `solutions/` and `exercises/`: each says what is wrong and hints at the fix.

A check cell calls one `check_*` function with the learner's function. The check runs it on small inputs,
compares the result with the course's own implementation (the one the lesson uses), and raises
`ExerciseCheckFailed` with a message that names the input, what came out, what should have come out, and a hint.
An exercise left as generated (its body is `raise NotImplementedError()`) fails here, at its own check cell,
with the hint of that exercise. On success a check prints one line; the points are in the check cell's nbgrader
metadata.
"""

from course_lib.chat import IGNORE_INDEX
from course_lib.exercise_checks.lesson01 import check_break_even, check_break_even_volume, check_cheapest
from course_lib.exercise_checks.lesson02 import check_near_duplicates, check_redact_emails, check_similarity
from course_lib.exercise_checks.lesson03 import (
    check_label_mask,
    check_pad_batch,
    check_shifted_loss,
    mask_conversations,
)
from course_lib.exercise_checks.lesson04 import check_lora_forward, check_lora_merge, check_lora_parameters
from course_lib.exercise_checks.lesson05a import check_bits_per_weight, check_dequantize_nf4, check_quantize_nf4
from course_lib.exercise_checks.lesson05b import (
    check_adamw8bit_state_bytes,
    check_merge_qlora,
    check_qlora_weight_bytes,
)
from course_lib.exercise_checks.lesson06 import (
    check_answer_logps,
    check_dpo_loss,
    check_reward_stats,
    reference_answer_logps,
)
from course_lib.exercise_checks.lesson07 import check_bootstrap_interval, check_cohen_kappa, check_paired_interval
from course_lib.exercise_checks.report import ExerciseCheckFailed, spans

__all__ = [
    "IGNORE_INDEX",
    "check_break_even",
    "check_break_even_volume",
    "check_cheapest",
    "check_near_duplicates",
    "check_redact_emails",
    "check_similarity",
    "check_label_mask",
    "check_pad_batch",
    "check_shifted_loss",
    "mask_conversations",
    "check_lora_forward",
    "check_lora_merge",
    "check_lora_parameters",
    "check_bits_per_weight",
    "check_dequantize_nf4",
    "check_quantize_nf4",
    "check_adamw8bit_state_bytes",
    "check_merge_qlora",
    "check_qlora_weight_bytes",
    "check_answer_logps",
    "check_dpo_loss",
    "check_reward_stats",
    "reference_answer_logps",
    "check_bootstrap_interval",
    "check_cohen_kappa",
    "check_paired_interval",
    "ExerciseCheckFailed",
    "spans",
]
