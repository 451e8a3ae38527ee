"""Claims with margins, the seed offset and the build folder that `make perturb` sets, and its table."""

import importlib.util
import json

import pytest

from course_lib import build_path, claims, profiles, runs, training
from course_lib.profiles import PROFILES, ProfileError

from repo_files import ROOT


@pytest.fixture(autouse=True)
def no_claims_log(monkeypatch):
    """Each test starts without a claims log, even inside a run that records one (a make perturb or make test run)."""
    monkeypatch.delenv("COURSE_CLAIMS_LOG", raising=False)
    monkeypatch.delenv("COURSE_CLAIMS_KEEP_GOING", raising=False)
    monkeypatch.setattr(claims, "_lesson", None)  # as before any start_lesson


def test_a_claim_that_holds_returns_its_margin_in_the_claims_units():
    assert claims.claim("accuracy above 0.8", 0.85, ">", 0.8) == pytest.approx(0.05)
    assert claims.claim("loss below 2", 1.5, "<", 2.0) == pytest.approx(0.5)
    assert claims.claim("exactly at the bound is allowed by >=", 0.8, ">=", 0.8) == 0


@pytest.mark.parametrize(("value", "op", "bound"),
                         [(0.8, ">", 0.8), (0.79, ">=", 0.8), (2.0, "<", 2.0), (2.1, "<=", 2.0)])
def test_a_claim_that_fails_says_what_and_by_how_much(value, op, bound):
    with pytest.raises(AssertionError, match=r"the claim: .* does not hold \(margin"):
        claims.claim("the claim", value, op, bound)


def test_an_unknown_comparison_is_refused():
    with pytest.raises(ValueError, match="op must be one of"):
        claims.claim("x", 1, "==", 1)


def test_claims_are_logged_as_json_lines_when_asked(monkeypatch, tmp_path):
    log = tmp_path / "sub" / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_LOG", str(log))
    claims.claim("first", 3, ">", 1)
    with pytest.raises(AssertionError):
        claims.claim("second", 0.5, ">=", 1)
    first, second = [json.loads(line) for line in log.read_text().splitlines()]
    assert first == {"claim": "first", "value": 3.0, "op": ">", "bound": 1.0, "margin": 2.0, "holds": True,
                     "cell": None, "lesson": None}
    assert (second["holds"], second["margin"]) == (False, -0.5)


def test_a_logged_claim_names_the_lesson_that_start_lesson_began(monkeypatch, tmp_path, capsys):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_LOG", str(log))
    profiles.start_lesson("06")
    claims.claim("in lesson 06", 1, ">", 0)
    assert json.loads(log.read_text())["lesson"] == "06"


def test_a_perturb_run_logs_a_failed_claim_and_goes_on(monkeypatch, tmp_path, capsys):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_LOG", str(log))
    monkeypatch.setenv("COURSE_CLAIMS_KEEP_GOING", "1")
    assert claims.claim("fails", 0.5, ">=", 1) == -0.5
    assert "CLAIM FAILED" in capsys.readouterr().out
    assert json.loads(log.read_text())["holds"] is False
    monkeypatch.delenv("COURSE_CLAIMS_LOG")  # without a log, keep-going alone never hides a failure
    with pytest.raises(AssertionError):
        claims.claim("fails", 0.5, ">=", 1)


def test_nothing_is_logged_by_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    claims.claim("quiet", 1, ">", 0)
    assert list(tmp_path.iterdir()) == []


def test_course_seed_shifts_every_training_seed(monkeypatch):
    import torch

    monkeypatch.setenv("COURSE_SEED", "2")
    assert profiles.course_seed(0) == 2 and profiles.course_seed(5) == 7
    profiles.set_seed(0)
    shifted = torch.rand(3)
    monkeypatch.delenv("COURSE_SEED")
    profiles.set_seed(2)
    assert torch.equal(shifted, torch.rand(3))
    monkeypatch.setenv("COURSE_SEED", "1")
    settings = runs.run_settings(PROFILES["tiny"], "03", output_dir="unused", seed=0)
    assert settings["seed"] == settings["data_seed"] == 1
    assert training.sft_settings(PROFILES["tiny"], [], seed=0)["seed"] == 1  # a saved seed-0 model is not reused


def test_a_bad_course_seed_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_SEED", "one")
    with pytest.raises(ProfileError, match="COURSE_SEED='one' is not a whole number"):
        profiles.set_seed(0)


def test_course_build_moves_every_run_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_BUILD", str(tmp_path / "elsewhere"))
    assert build_path("03_full_sft", "model") == tmp_path / "elsewhere" / "03_full_sft" / "model"


@pytest.fixture(scope="module")
def perturb():
    spec = importlib.util.spec_from_file_location("perturb", ROOT / "benchmarks" / "perturb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_perturb_knobs_combine_into_one_environment(perturb):
    env = perturb.knob_environment("avx2,1thread,seed+3")
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    assert env["OMP_NUM_THREADS"] == "1" and env["COURSE_SEED"] == "3"
    assert perturb.knob_environment("native") == {}
    with pytest.raises(SystemExit, match="unknown knob 'avx3'"):
        perturb.knob_environment("avx3")


def test_perturb_table_flags_a_claim_whose_spread_exceeds_its_margin(perturb, monkeypatch, tmp_path):
    records = tmp_path / "claims"
    records.mkdir()
    rows = {"native": [(0.90, True), (0.60, True)], "avx2": [(0.88, True), (0.52, True)]}
    for config, ((steady, _), (shaky, _)) in rows.items():
        lines = [{"config": config, "notebook": "03_full_sft.ipynb", "claim": text, "value": value, "op": ">=",
                  "bound": 0.5, "margin": value - 0.5, "holds": True, "cell": 7}
                 for text, value in (("steady", steady), ("shaky", shaky))]
        (records / f"{config}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.setattr(perturb, "RECORDS", records)
    monkeypatch.setattr(perturb, "TABLE", tmp_path / "claims.md")
    monkeypatch.setattr(perturb, "ROOT", tmp_path)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "03_full_sft.ipynb").write_text("{}")
    perturb.write_table()
    table = (tmp_path / "claims.md").read_text()
    steady = next(line for line in table.splitlines() if "| steady |" in line)
    shaky = next(line for line in table.splitlines() if "| shaky |" in line)
    assert steady.endswith("| +0.38 | 0.02 | 2/2 held | yes |")
    assert shaky.endswith("| +0.02 | 0.08 | 2/2 held | **no** |")
    assert "2 claims, 1 not portable." in table


def test_perturb_records_a_claims_log_from_a_make_test_run(perturb, monkeypatch, tmp_path):
    records = tmp_path / "claims"
    records.mkdir()
    (records / "native.jsonl").write_text(json.dumps(
        {"config": "native", "notebook": "07_evaluation.ipynb", "claim": "old", "value": 1, "op": ">", "bound": 0,
         "margin": 1, "holds": True, "cell": 3}) + "\n" + json.dumps(
        {"config": "native", "notebook": "04_lora.ipynb", "claim": "kept", "value": 1, "op": ">", "bound": 0,
         "margin": 1, "holds": True, "cell": 9}) + "\n")
    log = tmp_path / "make-test.jsonl"
    log.write_text(json.dumps({"claim": "new", "value": 2.0, "op": ">", "bound": 0.0, "margin": 2.0, "holds": True,
                               "cell": None, "lesson": "07"}) + "\n")
    monkeypatch.setattr(perturb, "RECORDS", records)
    monkeypatch.setattr(perturb, "TABLE", tmp_path / "claims.md")
    monkeypatch.setattr(perturb, "ROOT", tmp_path)
    (tmp_path / "notebooks").mkdir()
    for name in ("04_lora.ipynb", "07_evaluation.ipynb"):
        (tmp_path / "notebooks" / name).write_text("{}")
    perturb.record("native", log)
    rows = [json.loads(line) for line in (records / "native.jsonl").read_text().splitlines()]
    assert {(r["notebook"], r["claim"]) for r in rows} == {("04_lora.ipynb", "kept"), ("07_evaluation.ipynb", "new")}
    # another configuration's record of lesson 07's old claim is retired; its other claims and lessons stay
    (records / "avx2.jsonl").write_text("".join(json.dumps(
        {"config": "avx2", "notebook": notebook, "claim": claim, "value": 1, "op": ">", "bound": 0, "margin": 1,
         "holds": True, "cell": 3}) + "\n" for notebook, claim in (("07_evaluation.ipynb", "old"),
                                                                   ("07_evaluation.ipynb", "new"),
                                                                   ("04_lora.ipynb", "kept"))))
    perturb.record("native", log)
    rows = [json.loads(line) for line in (records / "avx2.jsonl").read_text().splitlines()]
    assert {(r["notebook"], r["claim"]) for r in rows} == {("07_evaluation.ipynb", "new"), ("04_lora.ipynb", "kept")}
    assert {r["config"] for r in rows} == {"avx2"}
    log.write_text(json.dumps({"claim": "nameless", "value": 1.0, "op": ">", "bound": 0.0, "margin": 1.0,
                               "holds": True, "cell": None, "lesson": None}) + "\n")
    with pytest.raises(SystemExit, match="name no lesson"):
        perturb.record("native", log)


def test_perturb_drops_the_records_of_a_notebook_that_no_longer_exists(perturb, monkeypatch, tmp_path, capsys):
    records = tmp_path / "claims"
    records.mkdir()
    lines = [{"config": "avx2", "notebook": name, "claim": "c", "value": 1, "op": ">", "bound": 0, "margin": 1,
              "holds": True, "cell": 2} for name in ("05_qlora.ipynb", "05a_4bit_formats.ipynb")]
    lines.append({"config": "avx2", "tests": "tests/test_lora.py", "passed": 3, "failed": []})
    (records / "avx2.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.setattr(perturb, "RECORDS", records)
    monkeypatch.setattr(perturb, "TABLE", tmp_path / "claims.md")
    monkeypatch.setattr(perturb, "ROOT", tmp_path)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "05a_4bit_formats.ipynb").write_text("{}")
    perturb.write_table()
    rows = [json.loads(line) for line in (records / "avx2.jsonl").read_text().splitlines()]
    assert [r.get("notebook") for r in rows] == ["05a_4bit_formats.ipynb", None]
    assert all(r["config"] == "avx2" for r in rows)
    assert "dropped the records of 05_qlora.ipynb" in capsys.readouterr().out
    assert "05_qlora" not in (tmp_path / "claims.md").read_text()
