"""``lab check`` results as JUnit XML, the test-report format CI systems display.

One ``<testsuite>``, one ``<testcase>`` per scenario (classname ``lab.<category>``): a wrong
endpoint makes a ``<failure>``, a probe that did not produce the contract an ``<error>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from censornet.check.report import scenario_details
from censornet.check.runner import CheckRun

SUITE_NAME = "blockprobe lab check"
# Characters XML 1.0 cannot carry (a probe's stderr may hold any of them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def junit_xml(run: CheckRun) -> str:
    """The run as a JUnit XML document."""
    failures = sum(s.status == "fail" for s in run.scenarios)
    errors = sum(s.status == "error" for s in run.scenarios)
    suites = ET.Element(
        "testsuites",
        name=SUITE_NAME,
        tests=str(len(run.scenarios)),
        failures=str(failures),
        errors=str(errors),
        time=f"{run.seconds:.2f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=SUITE_NAME,
        tests=str(len(run.scenarios)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{run.seconds:.2f}",
        timestamp=run.started_at,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("probe_cmd", run.probe_cmd),
        ("vantage", run.vantage),
        ("isp", run.isp),
        ("catalogue", run.catalogue),
        ("shuffle_seed", "" if run.seed is None else str(run.seed)),
    ):
        ET.SubElement(properties, "property", name=name, value=_text(value))
    for result in run.scenarios:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"lab.{result.category}",
            name=result.id,
            time=f"{result.seconds:.2f}",
        )
        details = "\n".join(line.strip() for line in scenario_details(result))
        if result.status == "fail":
            wrong = len(result.endpoints) - result.right
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{wrong} of {len(result.endpoints)} endpoints wrong",
                type="wrong-verdict",
            )
            failure.text = _text(details)
        elif result.status == "error":
            error = ET.SubElement(case, "error", message=_text(result.error), type="probe-error")
            error.text = _text(details)
        if result.stderr_tail:
            ET.SubElement(case, "system-err").text = _text(result.stderr_tail)
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'
