"""What the binary's verdict costs ``manage.py check`` (and every command that runs checks).

The system checks ask the Litestream binary to judge the generated configuration
(``litestream databases -json -config FILE``). This measures, side by side in one run:

1. ``check_settings()`` in-process, with the verdict and with it stubbed out (baseline);
2. ``python manage.py check`` as a whole, with django_litestream installed and without
   it in INSTALLED_APPS (baseline: Django's own checks and start-up).

Medians of N runs (``--runs``), with the ratio to the baseline. Exits 0 unless a run fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.project import make_project


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def in_process(runs: int, replica: str) -> tuple[float, float]:
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django_litestream"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(replica, "db.sqlite3"),
            }
        },
        LITESTREAM={"dbs": [{"path": "default", "replica": {"type": "file", "path": replica}}]},
    )
    django.setup()
    from django_litestream import checks
    from django_litestream.config import verdict

    def sample() -> float:
        start = time.perf_counter()
        messages = checks.check_settings()
        took = time.perf_counter() - start
        assert messages == [], messages
        return took

    sample()  # warm: imports, the binary in the page cache
    real = verdict.refusals
    with_verdict, without = [], []
    for _ in range(runs):  # alternate, so that load on the machine hits both alike
        with_verdict.append(sample())
        verdict.refusals = lambda *a, **k: []  # type: ignore[assignment]
        without.append(sample())
        verdict.refusals = real
    return median_ms(with_verdict), median_ms(without)


def end_to_end(runs: int, root: Path) -> tuple[float, float]:
    project = make_project(root)
    project.configure(
        {"dbs": [{"path": "default", "replica": {"type": "file", "path": str(root / "r")}}]}
    )
    settings = root / "settings.py"
    with_app = settings.read_text()
    without_app = with_app.replace('"django_litestream", ', "")

    def sample(text: str) -> float:
        settings.write_text(text)
        start = time.perf_counter()
        result = project.run("check")
        took = time.perf_counter() - start
        assert result.returncode == 0, result.stderr
        return took

    sample(with_app)
    installed, baseline = [], []
    for _ in range(runs):
        installed.append(sample(with_app))
        baseline.append(sample(without_app))
    return median_ms(installed), median_ms(baseline)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per figure (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        root = Path(tmp)
        (root / "proj").mkdir()
        e2e_with, e2e_without = end_to_end(args.runs, root / "proj")
        in_with, in_without = in_process(args.runs, str(root))
    print(f"medians of {args.runs} runs, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'measure':<52}{'ms':>9}{'baseline':>10}{'cost ms':>9}{'ratio':>7}")
    rows = [
        ("check_settings() in-process, verdict vs stubbed", in_with, in_without),
        ("manage.py check, app installed vs not", e2e_with, e2e_without),
    ]
    for name, value, base in rows:
        print(f"{name:<52}{value:>9.1f}{base:>10.1f}{value - base:>9.1f}{value / base:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
