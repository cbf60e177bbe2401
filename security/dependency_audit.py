"""python -m security.dependency_audit: known vulnerabilities in the pinned dependencies fail the tests.

    python -m security.dependency_audit [--allowlist FILE] [REQUIREMENTS ...]

Runs pip-audit on the pinned requirement files (default: every requirements*.txt
and tests/browser/requirements.txt; pip-audit does not follow `-r` lines with
--no-deps, so each is named) with PyPI as the vulnerability source,
`--no-deps --disable-pip`: every package the test environment installs is pinned
in one of them (tests/unit/test_dependency_audit.py holds that), so nothing is
resolved or installed and the audit takes seconds.

A vulnerability with a fixed version fails the audit unless the allowlist
(security/audit-allowlist.toml) names its id or an alias for that package, with a
reason and an expiry date; an entry past its date fails too. A vulnerability with
no fix yet is printed and does not fail (there is nothing to upgrade to).

When PyPI does not answer for a release (an index or mirror that serves no
per-release JSON, as on the project's CI machines), pip-audit skips that pin. The
audit then reads the project's JSON, whose vulnerabilities are those of its latest
release: a pin on the latest release is checked that way, any other is listed as
not checked. Exit status: 0 passed, 1 a finding or an allowlist error, 2 usage or
pip-audit failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "security" / "audit-allowlist.toml"
REQUIREMENTS = [*sorted(ROOT.glob("requirements*.txt")), ROOT / "tests" / "browser" / "requirements.txt"]
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_SKIPPED_VERSION = re.compile(r"\(([^()\s]+)\)\s*$")


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]

    @property
    def names(self) -> set[str]:
        return {self.id, *self.aliases}

    def line(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fix yet"
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.package} {self.version}: {self.id}{aliases}, {fix}"


@dataclass(frozen=True)
class Allowance:
    id: str
    package: str
    reason: str
    expires: datetime.date

    def covers(self, vulnerability: Vulnerability) -> bool:
        return _canonical(self.package) == _canonical(vulnerability.package) and self.id in vulnerability.names


@dataclass
class Report:
    vulnerabilities: list[Vulnerability] = field(default_factory=list)
    checked: dict[str, str] = field(default_factory=dict)  # package -> how: pip-audit or latest-release data
    not_checked: dict[str, str] = field(default_factory=dict)  # package -> why


@dataclass
class Verdict:
    failures: list[str]
    notes: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def load_allowlist(text: str) -> tuple[list[Allowance], list[str]]:
    """The entries of an allowlist file, and what is wrong with it (each a failure)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [], [f"allowlist is not valid TOML: {error}"]
    entries, errors = [], []
    for number, entry in enumerate(document.get("allow", []), start=1):
        missing = [key for key in ("id", "package", "reason", "expires") if not entry.get(key)]
        if missing:
            errors.append(f"allowlist entry {number} lacks {', '.join(missing)}")
            continue
        if not isinstance(entry["expires"], datetime.date) or isinstance(entry["expires"], datetime.datetime):
            errors.append(f"allowlist entry {number} ({entry['id']}): expires must be a date like 2027-01-31")
            continue
        entries.append(Allowance(str(entry["id"]), str(entry["package"]), str(entry["reason"]), entry["expires"]))
    unknown = set(document) - {"allow"}
    if unknown:
        errors.append(f"allowlist has unknown keys: {', '.join(sorted(unknown))}")
    return entries, errors


def judge(report: Report, allowlist: Sequence[Allowance], today: datetime.date) -> Verdict:
    failures, notes = [], []
    for entry in allowlist:
        if entry.expires < today:
            failures.append(
                f"allowlist entry {entry.id} ({entry.package}) expired on {entry.expires}: upgrade, or decide again"
            )
    live = [entry for entry in allowlist if entry.expires >= today]
    used: set[Allowance] = set()
    for vulnerability in report.vulnerabilities:
        allowed = [entry for entry in live if entry.covers(vulnerability)]
        used.update(allowed)
        if allowed:
            notes.append(f"allowed until {allowed[0].expires}: {vulnerability.line()} ({allowed[0].reason})")
        elif vulnerability.fixed_in:
            failures.append(f"vulnerable: {vulnerability.line()}")
        else:
            notes.append(f"known, not fixable yet: {vulnerability.line()}")
    for entry in live:
        if entry not in used:
            notes.append(f"allowlist entry {entry.id} ({entry.package}) matched nothing in this audit")
    for package, why in sorted(report.not_checked.items()):
        notes.append(f"not checked: {package} ({why})")
    return Verdict(failures, notes)


def parse_pip_audit(output: Mapping[str, Any]) -> tuple[Report, dict[str, str]]:
    """pip-audit's JSON: the report of what it checked, and the pins it skipped (package -> version)."""
    report, skipped = Report(), {}
    for dependency in output.get("dependencies", []):
        name = str(dependency["name"])
        if "skip_reason" in dependency:
            found = _SKIPPED_VERSION.search(str(dependency["skip_reason"]))
            skipped[name] = found.group(1) if found else ""
            continue
        version = str(dependency["version"])
        report.checked[name] = "pip-audit"
        for vuln in dependency.get("vulns", []):
            report.vulnerabilities.append(
                Vulnerability(
                    name, version, str(vuln["id"]), tuple(vuln.get("aliases", [])), tuple(vuln.get("fix_versions", []))
                )
            )
    return report, skipped


def add_latest_release_data(
    report: Report, skipped: Mapping[str, str], fetch: Callable[[str], Mapping[str, Any] | None]
) -> None:
    """For each pin pip-audit skipped: the project's JSON lists the vulnerabilities of its latest release."""
    names = sorted(skipped)
    with ThreadPoolExecutor(max_workers=8) as pool:
        projects = dict(zip(names, pool.map(fetch, names), strict=True))
    for name in names:
        version, project = skipped[name], projects[name]
        if project is None:
            report.not_checked[name] = f"{version}: PyPI did not answer"
            continue
        latest = str(project.get("info", {}).get("version", ""))
        if not version or version != latest:
            report.not_checked[name] = f"{version or '?'}: PyPI serves no data for this release (latest {latest})"
            continue
        report.checked[name] = "latest-release data"
        for vuln in project.get("vulnerabilities") or []:
            if vuln.get("withdrawn"):
                continue
            report.vulnerabilities.append(
                Vulnerability(
                    name, version, str(vuln["id"]), tuple(vuln.get("aliases") or []), tuple(vuln.get("fixed_in") or [])
                )
            )


def fetch_project(name: str) -> Mapping[str, Any] | None:
    """The project's JSON from PyPI, or None when PyPI does not answer with it."""
    try:
        with urllib.request.urlopen(PROJECT_JSON.format(name=name), timeout=20) as response:
            project: Mapping[str, Any] = json.load(response)
    except (OSError, ValueError):  # URLError and HTTPError are OSErrors
        return None
    return project


def run_pip_audit(requirements: Iterable[Path]) -> Mapping[str, Any]:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--vulnerability-service",
        "pypi",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--no-deps",
        "--disable-pip",
    ]
    for path in requirements:
        command += ["-r", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    # 0: nothing found, 1: something found; anything else is pip-audit failing.
    if result.returncode not in (0, 1):
        raise RuntimeError(f"pip-audit failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    output: Mapping[str, Any] = json.loads(result.stdout)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m security.dependency_audit", description=__doc__.split("\n")[0])
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    parser.add_argument("requirements", nargs="*", type=Path, default=REQUIREMENTS)
    args = parser.parse_args(argv)
    allowlist, errors = load_allowlist(args.allowlist.read_text(encoding="utf-8"))
    try:
        report, skipped = parse_pip_audit(run_pip_audit(args.requirements))
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
        print(f"dependency audit: {error}", file=sys.stderr)
        return EXIT_USAGE
    add_latest_release_data(report, skipped, fetch_project)
    verdict = judge(report, allowlist, datetime.date.today())
    verdict.failures[:0] = errors
    for note in verdict.notes:
        print(f"dependency audit: {note}")
    for failure in verdict.failures:
        print(f"dependency audit: FAIL {failure}", file=sys.stderr)
    by_pip_audit = sum(1 for how in report.checked.values() if how == "pip-audit")
    print(
        f"dependency audit: {len(report.checked)} of {len(report.checked) + len(report.not_checked)} pins checked "
        f"({by_pip_audit} by pip-audit, {len(report.checked) - by_pip_audit} from PyPI's latest-release data), "
        f"{len(report.vulnerabilities)} known vulnerabilities, {len(verdict.failures)} failures"
    )
    return EXIT_OK if verdict.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
