"""Reading OONI files and grouping measurements by report, on small inputs and on the set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from blockprobe.cli import build_app
from probe.ooni.analyse import analyse, load
from probe.ooni.mapping import imported
from probe.ooni.reader import Loaded, ReadError, read
from tests.ooni.shared_set import DATA, needs_set

QA = DATA / "minipipeline" / "generated"


def _qa(name: str, report_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((QA / name / "measurement.json").read_text())
    data["report_id"] = report_id
    return data


def test_jsonl_and_jsonc(tmp_path: Path) -> None:
    """One measurement per line, and // comment lines dropped."""
    line = {"input": "https://example.org/", "report_id": "r", "test_keys": {"queries": []}}
    (tmp_path / "a.jsonl").write_text(json.dumps(line) + "\n\n" + json.dumps(line) + "\n")
    (tmp_path / "b.jsonc").write_text("// a comment\n" + json.dumps(line))
    found = list(read(tmp_path))
    assert ["a.jsonl:1", "a.jsonl:3", "b.jsonc"] == [Path(x.source).name for x in found]


def test_bare_test_keys_get_their_input_from_the_query(tmp_path: Path) -> None:
    """probe-cli keeps some measurements as test_keys only: the queried name gives the URL."""
    keys = {"queries": [{"hostname": "mask.icloud.com", "engine": "getaddrinfo"}]}
    (tmp_path / "keys.jsonc").write_text("// test_keys only\n" + json.dumps(keys))
    (loaded,) = read(tmp_path / "keys.jsonc")
    item = imported(loaded.data, loaded.source)
    assert ("https://mask.icloud.com/", "mask.icloud.com") == (item.plan.url, item.plan.domain)


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is no measurement: a message, not a traceback (exit status 2 from the CLI)."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"labels": []}')
    with pytest.raises(ReadError, match="no test_keys"):
        list(read(bad))
    result = CliRunner().invoke(build_app("ooni"), ["ooni", "analyse", str(bad)])
    assert 2 == result.exit_code
    assert "no test_keys" in result.output
    missing = CliRunner().invoke(build_app("ooni"), ["ooni", "analyse", str(tmp_path / "no")])
    assert 2 == missing.exit_code


def test_measurement_without_a_url_is_listed_not_fatal() -> None:
    """A measurement of another test (no URL input) is reported as an error line."""
    items, errors = load([Loaded("s", {"input": None, "test_keys": {}})])
    assert [] == items
    assert ["s: no input URL: not a Web Connectivity measurement"] == errors


@needs_set
def test_a_report_gives_canaries_and_further_tries(tmp_path: Path) -> None:
    """Two timeouts of one report are two tries, and a third site that loads is a canary.

    Alone, each TCP timeout is one try and says nothing; grouped, the same connect failed twice
    while another site of the same session loaded: an IP block.
    """
    report = "20240101T000000Z_webconnectivity_IT_137_n1_AAAAAAAAAAAAAAAA"
    lines = [
        _qa("tcpBlockingConnectTimeout", report),
        _qa("tcpBlockingConnectTimeout", report),
        _qa("largeFileWithHTTPS", report),
    ]
    path = tmp_path / "report.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    items, _ = load(read(path))
    alone = analyse(items, grouped=False)
    grouped = analyse(items, grouped=True)
    assert ("inconclusive", None) == (alone[0].verdict.kind, alone[0].verdict.method)
    assert ("blocked", "tcp.timeout") == (grouped[0].verdict.kind, grouped[0].verdict.method)
    assert 2 == grouped[0].peers
    assert ("reachable", None) == (grouped[2].verdict.kind, grouped[2].verdict.method)


@needs_set
def test_cli_json_is_the_verdict_contract() -> None:
    """``--json`` prints one document: contract fields per measurement, OONI's, a summary."""
    result = CliRunner().invoke(
        build_app("ooni"), ["ooni", "analyse", str(QA / "dnsBlockingNXDOMAIN"), "--json"]
    )
    assert 0 == result.exit_code, result.output
    document = json.loads(result.stdout)
    (row,) = document["results"]
    contract = {"platform", "target", "domain", "verdict", "method", "confidence", "evidence"}
    assert contract <= set(row)
    assert ("blocked", "dns.nxdomain") == (row["verdict"], row["method"])
    assert {"blocking": "dns", "accessible": False} == {
        k: row["ooni"][k] for k in ("blocking", "accessible")
    }
    assert 1 == document["summary"]["all"]["agree"]


@needs_set
def test_cli_table_and_comparison() -> None:
    """The table names each input, and --compare counts the verdicts that change."""
    result = CliRunner().invoke(
        build_app("ooni"), ["ooni", "analyse", str(DATA / "backend-fastpath"), "--compare"]
    )
    assert 0 == result.exit_code, result.output
    assert "archive.org" in result.stdout
    assert "0 of 10 verdicts differ" in result.output
