"""Informed consent: what the probe measures, what it uploads, the risks; recorded before any run.

Modelled on OONI Probe's onboarding: the text, then two true/false questions that check the two
facts a volunteer in a censoring country most needs to have understood, then a final yes. The
record (``<state>/consent.json``) carries the text's version; a new version asks again.
``--accept`` (or ``BLOCKPROBE_ACCEPT_CONSENT=1``) records consent without questions, for
installs where the volunteer read the text elsewhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from probe.model.base import FrozenModel

CONSENT_VERSION = 1
CONSENT_FILE = "consent.json"

TEXT = """\
blockprobe: before you start

WHAT IT DOES. While it runs, this probe connects from your network, about every half hour, to the
platforms in its configuration (for example X/Twitter, YouTube, WhatsApp), to a few unrelated
"canary" sites, and to DNS resolvers, to tell whether a platform is reachable, blocked, throttled
or down. It only contacts those configured endpoints; a collector cannot make it fetch anything
else. It may download a few hundred KiB per run to measure speed (not on a metered connection).

WHAT IT UPLOADS. Signed results to the collector you configured: for each endpoint, what happened
(DNS answers, connection and TLS outcomes, HTTP status and sizes, timings, throughput) and the
verdict, with the country, network number (ASN) and network label you configured. Not your IP
address, not your browsing, not any file of yours. Results may be PUBLISHED, so that others can
see that a platform was blocked on your network at that time. Each network gets its own key, so
results from your home and your work network cannot be linked by key.

THE RISKS. Anyone watching your network (your ISP, your employer, a government) can see that this
machine connects to blocked platforms and to the collector, repeatedly and automatically; this
looks different from a person browsing. In some countries, accessing blocked services, running
network measurement or contributing to reports on censorship may be illegal or lead to
surveillance, questioning or worse. This probe is not a privacy or circumvention tool: it does
not hide what it does. Only run it if you understand these risks for your own situation; if in
doubt, ask a digital-security organisation you trust first. You can stop it at any time.
"""


@dataclass(frozen=True)
class Question:
    """A true/false check that a fact of the text was understood."""

    statement: str
    answer: bool
    why: str


QUIZ = (
    Question(
        "Anyone monitoring my network can see that I am running blockprobe.",
        True,
        "The probe's traffic is not hidden: it visibly contacts blocked platforms and the"
        " collector, again and again.",
    ),
    Question(
        "The results are kept private to me and never published.",
        False,
        "Results are uploaded and may be published, with your country and network (never"
        " your IP address).",
    ),
)

HOW_TO_CONSENT = (
    "blockprobe needs your informed consent before it measures anything. Read what it does"
    " with `blockprobe daemon --show-consent`, then either run `blockprobe daemon` once in a"
    " terminal and answer the questions, or start it with `--accept` (or set"
    " BLOCKPROBE_ACCEPT_CONSENT=1, e.g. in `systemctl edit blockprobe`) to record your consent."
)

How = Literal["interactive", "flag", "environment"]


class ConsentRecord(FrozenModel):
    """Who agreed to which version of the text, when and how."""

    version: int
    accepted_at: datetime
    how: How


class ConsentRequired(Exception):
    """No consent recorded, and none can be asked for; the message says how to give it."""


def path_of(state_dir: Path) -> Path:
    return state_dir / CONSENT_FILE


def load(state_dir: Path) -> ConsentRecord | None:
    """The recorded consent for the current text, or None."""
    try:
        record = ConsentRecord.model_validate_json(path_of(state_dir).read_bytes())
    except (OSError, ValidationError, json.JSONDecodeError):
        return None
    return record if record.version == CONSENT_VERSION else None


def record(state_dir: Path, how: How) -> ConsentRecord:
    """Write a consent record for the current text (atomically)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    entry = ConsentRecord(version=CONSENT_VERSION, accepted_at=datetime.now(UTC), how=how)
    path = path_of(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entry.model_dump_json() + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return entry


def withdraw(state_dir: Path) -> bool:
    """Forget the recorded consent; True if there was one."""
    try:
        path_of(state_dir).unlink()
    except FileNotFoundError:
        return False
    return True


TRUE_WORDS = frozenset({"true", "t", "yes", "y"})
FALSE_WORDS = frozenset({"false", "f", "no", "n"})


def parse_answer(text: str) -> bool:
    """``true``/``false`` (or ``yes``/``no``, ``t``/``f``, ``y``/``n``, any case) as a bool."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text.strip()!r}: please answer true or false (yes or no)")


def interview(echo: Callable[[str], None], confirm: Callable[[str], bool]) -> bool:
    """Show the text and the quiz; True if every answer is right and the volunteer agrees.

    ``confirm`` asks one question and returns the answer (see ``parse_answer``).
    """
    echo(TEXT)
    for i, q in enumerate(QUIZ, 1):
        said = confirm(f"Question {i}: true or false? {q.statement}")
        if said != q.answer:
            echo(f"Not quite: {q.why} Please read the text again before running blockprobe.")
            return False
        echo(f"Right: {q.why}")
    return confirm(
        "Do you understand the risks and want this machine to run blockprobe? (yes or no)"
    )


def ensure(
    state_dir: Path,
    *,
    accept: How | None,
    interactive: bool,
    echo: Callable[[str], None],
    confirm: Callable[[str], bool],
) -> ConsentRecord:
    """The consent to run: recorded before, given now by ``accept``, or asked on a terminal.

    Raises ``ConsentRequired`` when there is none and none can be asked for, or when the
    volunteer declines.
    """
    existing = load(state_dir)
    if existing is not None:
        return existing
    if accept is not None:
        return record(state_dir, accept)
    if not interactive:
        raise ConsentRequired(HOW_TO_CONSENT)
    if not interview(echo, confirm):
        raise ConsentRequired("Consent not given; blockprobe will not run. " + HOW_TO_CONSENT)
    return record(state_dir, "interactive")
