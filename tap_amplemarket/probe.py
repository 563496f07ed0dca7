"""`tap-amplemarket --probe`: what the docs leave UNKNOWN, settled against the user's account.

Read-only: at most MAX_REQUESTS GETs of the list endpoints the streams read (never a
credit-consuming one), through the streams' own request code (auth, origin rule, limiter,
retries, page-size fallback), paced at a quarter of max_requests_per_minute. One line per
fact: CONFIRMED, DIFFERS (what the tap does, or the setting to change) or NO DATA. It prints
types, formats, field names and enum values, never a record's value (names, emails, phone
numbers, ids) nor the key. Exit 0: nothing the tap depends on differs; 1: something does;
2: the key is rejected.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t

from tap_amplemarket.probe_facts import FACTS
from tap_amplemarket.probe_session import (
    CONFIRMED,
    DIFFERS,
    FIRST_PAGES,
    NO_DATA,
    BudgetSpentError,
    Finding,
    KeyRejectedError,
    Prober,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_amplemarket.tap import TapAmplemarket


def run_probe(tap: TapAmplemarket) -> tuple[list[Finding], int]:
    """Every fact's finding, and the exit code. Raises KeyRejectedError."""
    probe = Prober(tap)
    for name in FIRST_PAGES:
        probe.first[name] = probe.get(name)
    findings = []
    for fact in FACTS:
        try:
            findings.append(fact(probe))
        except BudgetSpentError:
            findings.append(Finding(getattr(fact, "__name__", "fact"), NO_DATA, "budget spent"))
    code = 1 if any(f.status == DIFFERS and f.matters for f in findings) else 0
    findings.append(summary(findings, probe.sent))
    return findings, code


def summary(findings: list[Finding], sent: int) -> Finding:
    """The closing SUMMARY line: findings per status, the verdict and the GETs sent."""
    counts = {s: sum(f.status == s for f in findings) for s in (CONFIRMED, DIFFERS, NO_DATA)}
    matters = sum(f.status == DIFFERS and f.matters for f in findings)
    seen = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
    verdict = (
        f"{matters} the tap depends on: change what the lines say"
        if matters
        else "nothing the tap depends on differs"
    )
    return Finding("summary", "SUMMARY", f"{seen}; {verdict}; {sent} GET requests")


def main(tap_factory: Callable[[], TapAmplemarket], json_path: str | None) -> int:
    """Print each finding; write them as JSON to `json_path`, if given. The exit code."""
    try:
        findings, code = run_probe(tap_factory())
    except KeyRejectedError:
        findings = [
            Finding(
                "key",
                DIFFERS,
                "Amplemarket rejected the API key (401, or 403 on the first request)",
                "check api_key, and that the key's plan includes the API",
            )
        ]
        code = 2
    for finding in findings:
        print(finding.line(), flush=True)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as file:
            json.dump(
                {"exit_code": code, "findings": [dataclasses.asdict(f) for f in findings]},
                file,
                indent=2,
            )
    return code
