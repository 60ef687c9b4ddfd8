"""The JUnit XML report of a run: one testsuite, one testcase per expectation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from scenarios.runner import Run


def junit_xml(run: Run, path: Path, duration_s: float) -> None:
    """One testsuite per run, one testcase per expectation (a failed step is an error case)."""
    failures = sum(1 for v in run.verdicts if not v.passed)
    suite = ET.Element(
        "testsuite",
        name=run.scenario.name,
        tests=str(len(run.verdicts) + len(run.errors)),
        failures=str(failures),
        errors=str(len(run.errors)),
        time=f"{duration_s:.3f}",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run_id", value=run.run_id)
    for v in run.verdicts:
        case = ET.SubElement(
            suite, "testcase", classname=run.scenario.name, name=v.name, time=f"{v.elapsed_s:.3f}"
        )
        if not v.passed:
            failure = ET.SubElement(case, "failure", message=v.message, type="ExpectationFailed")
            failure.text = v.message
        else:
            ET.SubElement(case, "system-out").text = v.message
    for err in run.errors:
        case = ET.SubElement(suite, "testcase", classname=run.scenario.name, name="timeline")
        ET.SubElement(case, "error", message=err, type="StepFailed").text = err
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
