"""Informed consent: recorded once, asked on a terminal with a quiz, refused without one."""

from __future__ import annotations

import json

import pytest

from probe.daemon import consent


def scripted(*answers: bool):
    said = list(answers)
    shown: list[str] = []
    return shown, shown.append, lambda question: said.pop(0)


def test_without_a_terminal_and_without_accept_consent_is_refused(tmp_path):
    """No TTY: ConsentRequired says how to consent; nothing is recorded."""
    shown, echo, confirm = scripted()
    with pytest.raises(consent.ConsentRequired, match="--accept"):
        consent.ensure(tmp_path, accept=None, interactive=False, echo=echo, confirm=confirm)
    assert consent.load(tmp_path) is None


def test_accept_records_consent_without_questions(tmp_path):
    """--accept records how consent was given; later starts find it."""
    shown, echo, confirm = scripted()
    record = consent.ensure(tmp_path, accept="flag", interactive=False, echo=echo, confirm=confirm)
    assert ("flag", consent.CONSENT_VERSION) == (record.how, record.version)
    assert record == consent.load(tmp_path)
    assert [] == shown
    again = consent.ensure(tmp_path, accept=None, interactive=False, echo=echo, confirm=confirm)
    assert record == again


def test_the_interview_shows_the_risks_and_needs_right_answers(tmp_path):
    """Right quiz answers plus a final yes record 'interactive' consent after showing the text."""
    shown, echo, confirm = scripted(True, False, True)
    record = consent.ensure(tmp_path, accept=None, interactive=True, echo=echo, confirm=confirm)
    assert "interactive" == record.how
    assert consent.TEXT == shown[0]
    assert "PUBLISHED" in consent.TEXT and "not a privacy or circumvention tool" in consent.TEXT


@pytest.mark.parametrize("answers", [(False,), (True, True), (True, False, False)])
def test_a_wrong_answer_or_a_no_records_nothing(tmp_path, answers):
    """A misunderstanding (wrong answer) or a final no refuses to start."""
    shown, echo, confirm = scripted(*answers)
    with pytest.raises(consent.ConsentRequired, match="not given"):
        consent.ensure(tmp_path, accept=None, interactive=True, echo=echo, confirm=confirm)
    assert consent.load(tmp_path) is None


def test_a_new_text_version_asks_again(tmp_path):
    """Consent to an older text does not count."""
    consent.record(tmp_path, "flag")
    path = consent.path_of(tmp_path)
    data = json.loads(path.read_text())
    data["version"] = consent.CONSENT_VERSION - 1
    path.write_text(json.dumps(data))
    assert consent.load(tmp_path) is None
    path.write_text("{not json")
    assert consent.load(tmp_path) is None


def test_withdraw_forgets_consent(tmp_path):
    """Withdrawing removes the record."""
    consent.record(tmp_path, "environment")
    assert consent.withdraw(tmp_path) is True
    assert consent.load(tmp_path) is None
    assert consent.withdraw(tmp_path) is False


def test_the_quiz_accepts_the_answers_it_asks_for():
    """'true or false?' takes true/false (and yes/no), in any case; anything else is asked again."""
    from click.testing import CliRunner

    from probe.commands.daemon import ask

    for typed, expected in [("true", True), ("False", False), ("yes", True), ("n", False)]:
        with CliRunner().isolation(input=f"{typed}\n"):
            assert expected is ask("Question 1: true or false? ...")
    with CliRunner().isolation(input="maybe\nTRUE\n") as (out, *_):
        assert ask("Question 2: true or false? ...") is True
        assert b"please answer true or false" in out.getvalue()
