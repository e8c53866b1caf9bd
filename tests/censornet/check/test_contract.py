"""Reading a probe's stdout as the verdict contract: one document, an array, or JSON lines."""

from __future__ import annotations

import json

import pytest

from censornet.check.contract import ContractError, ProbeResult, parse_output

RESULT = {"target": "https://x.com/", "verdict": "blocked", "method": "tls.reset"}
SUMMARY = {"target": None, "platform": "x", "verdict": "blocked", "method": "tls.reset"}


def test_one_document_drops_platform_summaries() -> None:
    """`blockprobe run --json`'s document: endpoint results kept, the summary (target null) not."""
    text = json.dumps({"probe": {}, "results": [RESULT, SUMMARY]}, indent=1)
    assert [ProbeResult("https://x.com/", "blocked", "tls.reset")] == parse_output(text)


def test_json_lines_of_results_and_documents() -> None:
    """Each line may be one result or one document; blank lines are ignored."""
    other = {"target": "http://x.com/", "verdict": "reachable", "method": None, "evidence": "ok"}
    text = "\n".join([json.dumps(RESULT), "", json.dumps({"results": [other]})])
    parsed = parse_output(text)
    assert ["https://x.com/", "http://x.com/"] == [r.target for r in parsed]
    assert ("ok",) == parsed[1].evidence


def test_an_array_of_results() -> None:
    """A bare JSON array of results is accepted too."""
    assert 1 == len(parse_output(json.dumps([RESULT])))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no output"),
        ('{"target": "https://x.com/", "verdict": "blocked"}\nnot json', "line 2: not JSON"),
        ('{"verdict": "blocked"}', "no 'target'"),
        ('{"target": "https://x.com/"}', "no 'verdict'"),
        ('{"target": 5, "verdict": "blocked"}', "'target' must be a URL string"),
        ('{"target": "u", "verdict": "blocked", "method": 3}', "'method' must be a string"),
        ('{"results": {}}', "'results' must be a list"),
        ("[1]", "must be a JSON object"),
        (json.dumps([RESULT, RESULT]), "reported twice"),
    ],
)
def test_malformed_output_is_a_clear_error(text: str, message: str) -> None:
    """What is wrong, and where, is in the message."""
    with pytest.raises(ContractError, match=message):
        parse_output(text)
