"""The dependency audit's judgement: what fails, what an allowlist entry lets through and until when."""

from __future__ import annotations

import datetime
import importlib.metadata
import re
from pathlib import Path
from typing import Any

from security import dependency_audit
from security.dependency_audit import Report, Vulnerability, judge, load_allowlist

ROOT = Path(__file__).resolve().parents[2]
TODAY = datetime.date(2026, 11, 28)
FIXABLE = Vulnerability("urllib3", "2.0.0", "GHSA-aaaa-bbbb-cccc", ("CVE-2026-0001", "PYSEC-2026-1"), ("2.0.7",))
UNFIXABLE = Vulnerability("ecdsa", "0.19.2", "GHSA-wj6h-64fc-37mp", ("CVE-2024-23342",), ())


def allowlist(entries: str) -> list[dependency_audit.Allowance]:
    allowed, errors = load_allowlist(entries)
    assert errors == []
    return allowed


def entry(id: str = "GHSA-aaaa-bbbb-cccc", package: str = "urllib3", expires: str = "2027-01-31") -> str:
    return f'[[allow]]\nid = "{id}"\npackage = "{package}"\nreason = "not reachable here"\nexpires = {expires}\n'


def test_a_fixable_vulnerability_fails_and_one_without_a_fix_is_only_reported() -> None:
    verdict = judge(Report(vulnerabilities=[FIXABLE, UNFIXABLE]), [], TODAY)
    assert verdict.failures == [
        "vulnerable: urllib3 2.0.0: GHSA-aaaa-bbbb-cccc (CVE-2026-0001, PYSEC-2026-1), fixed in 2.0.7"
    ]
    assert any("not fixable yet: ecdsa" in note for note in verdict.notes)


def test_an_allowlist_entry_lets_its_advisory_through_by_id_or_alias_until_it_expires() -> None:
    for id in ("GHSA-aaaa-bbbb-cccc", "CVE-2026-0001"):
        verdict = judge(Report(vulnerabilities=[FIXABLE]), allowlist(entry(id=id)), TODAY)
        assert verdict.passed, verdict.failures
        assert any(note.startswith("allowed until 2027-01-31: urllib3") for note in verdict.notes)
    # The last day still counts; the day after, the entry fails the audit even though it matches.
    assert judge(Report(vulnerabilities=[FIXABLE]), allowlist(entry(expires="2026-11-28")), TODAY).passed
    expired = judge(Report(vulnerabilities=[FIXABLE]), allowlist(entry(expires="2026-11-27")), TODAY)
    assert "allowlist entry GHSA-aaaa-bbbb-cccc (urllib3) expired on 2026-11-27: upgrade, or decide again" in (
        expired.failures
    )
    assert any(failure.startswith("vulnerable: urllib3") for failure in expired.failures)


def test_an_expired_entry_fails_even_when_nothing_matches_it() -> None:
    verdict = judge(Report(), allowlist(entry(expires="2025-01-01")), TODAY)
    assert not verdict.passed


def test_an_entry_for_another_id_or_package_does_not_allow_a_finding() -> None:
    for other in (entry(id="GHSA-zzzz-zzzz-zzzz"), entry(package="requests")):
        verdict = judge(Report(vulnerabilities=[FIXABLE]), allowlist(other), TODAY)
        assert [f for f in verdict.failures if f.startswith("vulnerable: urllib3")], other
        assert any("matched nothing in this audit" in note for note in verdict.notes)


def test_a_malformed_allowlist_is_an_error() -> None:
    assert load_allowlist("[[allow]]\nid = 'GHSA-1'\npackage = 'x'\nexpires = 2027-01-01\n")[1] == [
        "allowlist entry 1 lacks reason"
    ]
    (error,) = load_allowlist("[[allow]]\nid = 'GHSA-1'\npackage = 'x'\nreason = 'r'\nexpires = 'soon'\n")[1]
    assert "expires must be a date" in error
    assert load_allowlist("[[allow]\n")[1][0].startswith("allowlist is not valid TOML")
    assert load_allowlist("[[allowed]]\nid = 'x'\n")[1] == ["allowlist has unknown keys: allowed"]


def test_the_committed_allowlist_is_valid_and_current() -> None:
    allowed, errors = load_allowlist((ROOT / "security" / "audit-allowlist.toml").read_text(encoding="utf-8"))
    assert errors == []
    assert [a.id for a in allowed if a.expires < datetime.date.today()] == []


def test_pip_audit_output_and_the_latest_release_data_make_one_report() -> None:
    output: dict[str, Any] = {
        "dependencies": [
            {
                "name": "urllib3",
                "version": "2.0.0",
                "vulns": [{"id": FIXABLE.id, "fix_versions": ["2.0.7"], "aliases": list(FIXABLE.aliases)}],
            },
            {"name": "pika", "skip_reason": "Dependency not found on PyPI and could not be audited: pika (1.4.4)"},
            {"name": "grpcio", "skip_reason": "Dependency not found on PyPI and could not be audited: grpcio (1.85.1)"},
            {"name": "gone", "skip_reason": "Dependency not found on PyPI and could not be audited: gone (1.0)"},
        ],
        "fixes": [],
    }
    report, skipped = dependency_audit.parse_pip_audit(output)
    assert skipped == {"pika": "1.4.4", "grpcio": "1.85.1", "gone": "1.0"}
    projects: dict[str, dict[str, Any] | None] = {
        "pika": {
            "info": {"version": "1.4.4"},
            "vulnerabilities": [
                {"id": "PYSEC-2026-9", "aliases": [], "fixed_in": ["1.4.5"], "withdrawn": None},
                {"id": "PYSEC-2026-8", "aliases": [], "fixed_in": ["1.4.5"], "withdrawn": "2026-10-01T00:00:00"},
            ],
        },
        "grpcio": {"info": {"version": "1.85.3"}, "vulnerabilities": []},
        "gone": None,
    }
    dependency_audit.add_latest_release_data(report, skipped, projects.__getitem__)
    assert report.checked == {"urllib3": "pip-audit", "pika": "latest-release data"}
    assert report.not_checked == {
        "grpcio": "1.85.1: PyPI serves no data for this release (latest 1.85.3)",
        "gone": "1.0: PyPI did not answer",
    }
    assert [(v.package, v.id, v.fixed_in) for v in report.vulnerabilities] == [
        ("urllib3", FIXABLE.id, ("2.0.7",)),
        ("pika", "PYSEC-2026-9", ("1.4.5",)),
    ]
    assert len(judge(report, [], TODAY).failures) == 2


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_installed_package_is_pinned_so_the_audit_needs_no_resolution() -> None:
    """The audit runs pip-audit with --no-deps on the requirement files: a package installed without a pin of its
    own (pulled in by another) would never be audited."""
    pinned = set()
    for path in dependency_audit.REQUIREMENTS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "==" in line and not line.lstrip().startswith("#"):
                pinned.add(_canonical(line.split("==")[0].strip()))
    installed = {_canonical(d.metadata["Name"]) for d in importlib.metadata.distributions()}
    assert installed - pinned - {"pip"} == set()
