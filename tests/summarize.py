"""Sum the unit (meson TAP) and system (pytest junit) results into one line:
'N passed, N failed, N skipped'; exit 1 on any failure.

A unit program that crashed or printed no TAP counts as one failure, and so
does a missing result file: nothing that did not run is counted as passed."""

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET


def unit_counts(path):
    passed = failed = skipped = 0
    try:
        with open(path) as f:
            lines = [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError) as e:
        print(f"summary: cannot read {path}: {e}")
        return 0, 1, 0
    for t in lines:
        out = t.get("stdout") or ""
        ok = len(re.findall(r"^ok \d+", out, re.M))
        notok = len(re.findall(r"^not ok \d+", out, re.M))
        skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M | re.I))
        if t.get("result") not in ("OK", "SKIP") and notok == 0:
            notok = 1  # crashed, timed out or printed no plan
            print(f"summary: unit program {t.get('name')} ended {t.get('result')}")
        passed += ok - skip
        skipped += skip
        failed += notok
    return passed, failed, skipped


def junit_counts(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"summary: cannot read {path}: {e}")
        return 0, 1, 0
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failures = errors = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failures += int(s.get("failures", 0))
        errors += int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    if tests == 0:
        print(f"summary: {path} ran no test")
        return 0, 1, 0
    return tests - failures - errors - skipped, failures + errors, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps-failed", type=int, default=0)
    ap.add_argument("--junit", action="append", default=[])
    ap.add_argument("testlogs", nargs="*")
    a = ap.parse_args()
    p, f, s = 0, a.steps_failed, 0
    for path in a.testlogs:
        dp, df, ds = unit_counts(path)
        p, f, s = p + dp, f + df, s + ds
    for path in a.junit:
        dp, df, ds = junit_counts(path)
        p, f, s = p + dp, f + df, s + ds
    if a.steps_failed:
        print(f"summary: {a.steps_failed} build step(s) failed")
    print(f"{p} passed, {f} failed, {s} skipped")
    return 1 if f else 0


if __name__ == "__main__":
    sys.exit(main())
