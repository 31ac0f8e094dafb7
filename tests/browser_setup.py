"""Install what the browser tests need where we can: Debian's Chromium and a CJK font, when we are root.

Run before pytest (`make test`). In CI (CI=true) a browser that cannot be installed is a failure; elsewhere
the browser tests are skipped with the reason printed here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = os.environ.get("ISSUANCE_CHROMIUM", "/usr/bin/chromium")
# Names, addresses and branch names are Chinese: without a CJK font the screenshots show empty boxes.
PACKAGES = ["chromium", "fonts-wqy-microhei"]


def have_cjk_font() -> bool:
    """True when fontconfig knows a font covering Chinese."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    out = subprocess.run([fc_list, ":lang=zh"], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


def install(packages: list[str]) -> bool:
    """apt-get install the packages; True on success."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"browser_setup: cannot install {' '.join(packages)} (not root or no apt-get)", file=sys.stderr)
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if subprocess.run(cmd, env=env, check=False).returncode == 0:
        return True
    subprocess.run(["apt-get", "update"], env=env, check=False)
    return subprocess.run(cmd, env=env, check=False).returncode == 0


def main() -> int:
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    missing = [] if os.access(CHROMIUM, os.X_OK) else ["chromium"]
    if not have_cjk_font():
        missing.append("fonts-wqy-microhei")
    if missing and not install(missing) and "chromium" in missing:
        message = f"browser_setup: no Chromium at {CHROMIUM}; the browser tests will be skipped"
        print(message + (" (CI: failing)" if ci else ""), file=sys.stderr)
        return 1 if ci else 0
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("browser_setup: the playwright package is missing (pip install -e '.[test]')", file=sys.stderr)
        return 1 if ci else 0
    version = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"browser_setup: {version or CHROMIUM} ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
