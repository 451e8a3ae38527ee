"""Runtime profiles: selection order, auto-detection per GPU, and the errors a learner sees."""

import pytest

from course_lib.hardware import Hardware
from course_lib.profiles import PROFILES, ProfileError, select_profile, start_lesson

CPU = Hardware(cuda=False, gpu_name=None, gpu_memory_gb=None, bf16=False, cpu_count=2, ram_gb=24.0)
T4 = Hardware(cuda=True, gpu_name="Tesla T4", gpu_memory_gb=15.8, bf16=False, cpu_count=2, ram_gb=13.0)
L4 = Hardware(cuda=True, gpu_name="NVIDIA L4", gpu_memory_gb=23.7, bf16=True, cpu_count=8, ram_gb=53.0)
A100 = Hardware(cuda=True, gpu_name="NVIDIA A100-SXM4-40GB", gpu_memory_gb=42.5, bf16=True, cpu_count=12, ram_gb=85.0)


@pytest.mark.parametrize(("hardware", "expected"), [(CPU, "tiny"), (T4, "t4"), (L4, "t4"), (A100, "large")])
def test_auto_detection_picks_the_profile_that_fits(hardware, expected):
    profile, reason = select_profile(hardware, environ={})
    assert profile.name == expected
    assert reason.startswith("auto-detected: ")


def test_environment_variable_wins_over_detection():
    profile, reason = select_profile(A100, environ={"COURSE_PROFILE": "tiny"})
    assert profile.name == "tiny"
    assert "COURSE_PROFILE=tiny" in reason


def test_unknown_profile_lists_the_valid_names():
    with pytest.raises(ProfileError, match="'bogus' is not a profile. Valid names: tiny, t4, large"):
        select_profile(CPU, environ={"COURSE_PROFILE": "bogus"})


@pytest.mark.parametrize("name", ["t4", "large"])
def test_gpu_profile_without_cuda_says_what_it_needs(name):
    with pytest.raises(ProfileError, match=rf"Profile '{name}' needs a CUDA GPU.*COURSE_PROFILE=tiny"):
        select_profile(CPU, environ={"COURSE_PROFILE": name})


def test_large_profile_on_a_gpu_without_bf16_is_refused():
    with pytest.raises(ProfileError, match="native bfloat16.*Tesla T4.*COURSE_PROFILE=t4"):
        select_profile(T4, environ={"COURSE_PROFILE": "large"})


def test_profile_table_is_consistent():
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.dtype in {"float32", "float16", "bfloat16"}
        assert profile.batch_size > 0 and profile.max_length > 0
        assert set(profile.max_steps) == {"03", "04", "05", "06"}, f"{name}: a step budget per training lesson"
        assert set(profile.learning_rates) == {"full", "lora", "dpo", "prompt"}, f"{name}: a learning rate per method"
        assert all(rate > 0 for rate in profile.learning_rates.values())
    assert PROFILES["tiny"].is_local_model and not PROFILES["tiny"].needs_cuda
    assert not PROFILES["t4"].is_local_model and PROFILES["t4"].dtype == "float16"
    assert PROFILES["large"].needs_bf16 and PROFILES["large"].dtype == "bfloat16"


def test_a_profile_without_a_learning_rate_for_a_method_names_the_row_to_add_it_to():
    import dataclasses

    profile = dataclasses.replace(PROFILES["tiny"], learning_rates={"full": 5e-3})
    assert profile.learning_rate("full") == 5e-3
    with pytest.raises(KeyError, match=r"no learning rate for method 'lora'.*PROFILES\['tiny'\].learning_rates"):
        profile.learning_rate("lora")



def test_eval_slice_takes_the_profiles_rows_of_a_set_and_every_row_elsewhere():
    rows = list(range(400))
    assert PROFILES["tiny"].eval_slice("gold", rows) == rows[:200]
    assert PROFILES["tiny"].eval_slice("dev", tuple(rows)) == rows[:100]  # a list, whatever the rows came in
    assert PROFILES["tiny"].eval_slice("unnamed", rows) == rows
    assert PROFILES["t4"].eval_slice("gold", rows) == PROFILES["large"].eval_slice("gold", rows) == rows

def test_start_lesson_reports_and_seeds(monkeypatch, capsys):
    import torch

    monkeypatch.setenv("COURSE_PROFILE", "tiny")
    profile = start_lesson("00", seed=7)
    first = torch.rand(3)
    start_lesson("00", seed=7)
    assert torch.equal(first, torch.rand(3)), "the same seed gives the same random numbers"
    out = capsys.readouterr().out
    assert profile.name == "tiny"
    for field in ["device", "bf16", "profile     : tiny (COURSE_PROFILE=tiny is set)", "model", "transformers"]:
        assert field in out
