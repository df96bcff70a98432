import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _recommend(*args: str) -> dict:
    from io import StringIO

    out = StringIO()
    call_command("recommend_dose", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize(
    ("outcomes", "dose", "goes_on"),
    [("1NNN", 2, True), ("1NNT", 1, True), ("1NTT", None, False), ("1NNN 2NNT 2NNN", 3, True), ("", 1, True)],
)
def test_three_plus_three_answers_as_the_reference_does(outcomes, dose, goes_on):
    body = _recommend("--design", "3+3", "--outcomes", outcomes)
    assert set(body) == {"recommended_dose", "continue", "reason"}
    assert (body["recommended_dose"], body["continue"]) == (dose, goes_on)
    assert body["reason"]


def test_boin_escalates_after_zero_of_three_and_stops_when_the_lowest_dose_is_too_toxic():
    assert _recommend("--design", "boin", "--outcomes", "1NNN", "--target", "0.3")["recommended_dose"] == 2
    stopped = _recommend("--design", "boin", "--outcomes", "1TTT")
    assert (stopped["recommended_dose"], stopped["continue"]) == (None, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--design", "3+3", "--outcomes", "1NXN"], "'X'"),
        (["--design", "3+3", "--outcomes", "4NNN", "--doses", "3"], "dose level 4 at position 1"),
        (["--design", "crm", "--outcomes", "1NNN"], "crm"),
        (["--design", "boin", "--outcomes", "1NNN", "--target", "1.5"], "--target"),
    ],
)
def test_bad_input_exits_with_code_2_and_a_clear_message(args, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "recommend_dose", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "DEBUG": "true"},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


@pytest.mark.parametrize(
    ("outcomes", "r_answer", "confirm_answer"),
    [("1NNN 2NTT", (1, False), (1, True)), ("1NNN 2NNN 3NNN", (3, False), (3, True)), ("1NNN", (2, True), (2, True))],
)
def test_the_confirm_on_six_flag_gives_the_protocol_variant_and_the_default_stays_r(outcomes, r_answer, confirm_answer):
    default = _recommend("--design", "3+3", "--outcomes", outcomes)
    variant = _recommend("--design", "3+3", "--outcomes", outcomes, "--confirm-on-six")
    assert (default["recommended_dose"], default["continue"]) == r_answer
    assert (variant["recommended_dose"], variant["continue"]) == confirm_answer
