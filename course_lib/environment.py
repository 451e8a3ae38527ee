"""The environment check of lesson 00: is every package the course needs installed, in its tested range?

The ranges are read from the course's own package metadata (pyproject.toml), so they live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

DISTRIBUTION = "course-lib"  # the name pyproject.toml gives the course's package


@dataclass(frozen=True)
class PackageCheck:
    name: str  # distribution name, e.g. "transformers"
    wanted: str  # tested range, e.g. ">=5.23,<5.24"
    installed: str | None  # installed version, or None when missing
    ok: bool

    def line(self) -> str:
        status = "[OK]  " if self.ok else "[FAIL]"
        found = self.installed or "not installed"
        return f"{status} {self.name:<14} {found:<14} tested range {self.wanted}"


def requirements(extras: tuple[str, ...] = ()) -> list[Requirement]:
    """The course's requirements that apply here: the core ones plus those of `extras` (e.g. "dev")."""
    try:
        declared = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError as error:
        raise RuntimeError(
            f"The course's package ({DISTRIBUTION}) is not installed in this Python ({metadata.sys.executable}). "
            "Run `make lab` from the course folder, or `pip install -e .` there."
        ) from error
    wanted = []
    for text in declared:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            wanted.append(req)
    return wanted


def check_environment(extras: tuple[str, ...] = (), verbose: bool = True) -> list[PackageCheck]:
    """Check each required package against its tested range; print one [OK]/[FAIL] line each when verbose."""
    checks = []
    for req in requirements(extras):
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            installed = None
        # A local build label such as "+cpu" or "+cu121" does not change which release it is.
        ok = installed is not None and req.specifier.contains(Version(installed).public, prereleases=True)
        wanted = ",".join(sorted((str(s) for s in req.specifier), key=lambda s: not s.startswith(">")))
        checks.append(PackageCheck(name=req.name, wanted=wanted, installed=installed, ok=ok))
    if verbose:
        for check in checks:
            print(check.line())
        failed = [c.name for c in checks if not c.ok]
        if failed:
            print(f"\n{len(failed)} package(s) outside the tested range: {', '.join(failed)}. "
                  "Run `make setup` (or `pip install -e .` in the course folder) to install the tested versions.")
        else:
            print(f"\nAll {len(checks)} packages are installed in their tested ranges.")
    return checks
