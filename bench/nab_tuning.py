"""Choose the adaptive detector's NAB settings on the chosen half of the NAB subset
(genai_apm.evaluation.scoring.nab_split) with the detector's numpy twin (jobs/detectors.py), and
report the held-out half only for the winner: seconds per setting instead of a Flink job each.

    .venv/bin/python bench/nab_tuning.py [--nab DIR]

The twin sees what the job sees: each point as one call (scoring.nab_events), its p50 latency
as the per-minute histograms estimate it (the bucket's estimate, within the relative error).
tests/integration/test_anomalies_twin.py holds the job's openings equal to the twin's.
"""

from __future__ import annotations

import argparse
import functools
import itertools
from pathlib import Path

from genai_apm.evaluation import scoring
from genai_apm.jobs import anomalies, detectors

GRID = {  # the settings tried; the others are scoring.NAB_SETTINGS
    "baseline_windows": (144, 288),
    "relative_floor": (0.05, 0.1, 0.2),
    "threshold": (2.5, 3.0, 4.0),
    "history_windows": (500, 1000, 2000),
    "close_after_windows": (12, 24, 48, 96),
    "open_after_windows": (1, 2),
}
DEVIATION_KEYS = ("baseline_windows", "relative_floor")  # what the deviations depend on


def window_values(root: Path | None) -> tuple[dict, dict, dict]:
    """Per series: window starts and p50 latency as the job computes them; NAB windows."""
    series, windows = scoring.read_nab(root)
    return series, windows, scoring.nab_window_values(series)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/nab_tuning.py")
    parser.add_argument("--nab", help="a NAB folder (default ../shared/nab from the repository)")
    args = parser.parse_args(argv)
    series, windows, values = window_values(Path(args.nab) if args.nab else None)
    chosen, held_out = scoring.nab_split(series)
    step = scoring.NAB_SETTINGS["window_minutes"] * scoring.MINUTE
    floor = next(m.floor for m in anomalies.METRICS if m.name == "latency_p50_ms")
    base = {
        k: v for k, v in scoring.NAB_SETTINGS.items() if k in detectors.Params.__dataclass_fields__
    }

    @functools.cache
    def deviations(name: str, n: int, rel: float):
        p = detectors.Params(**(base | {"baseline_windows": n, "relative_floor": rel}))
        return detectors.deviations(*values[name], p, floor)

    def files(settings: dict, names: list[str]) -> dict:
        p = detectors.Params(**(base | settings))
        found = {}
        for name in names:
            dev, warm = deviations(name, p.baseline_windows, p.relative_floor)
            rows = detectors.opens(detectors.states(detectors.hot_windows(dev, warm, p), p))
            found[name] = [int(values[name][0][i]) + step for i in rows]
        return scoring.nab_files({n: series[n] for n in names}, windows, found)

    results = []
    for combo in itertools.product(*GRID.values()):
        settings = dict(zip(GRID, combo, strict=True))
        score = scoring.nab_summary(files(settings, chosen))["nab_score_standard"]
        results.append((score, settings))
    results.sort(key=lambda r: -r[0])
    print(f"chosen on {len(chosen)} series; top settings by their standard score:")
    for score, settings in results[:5]:
        print(f"  {score:5.1f}  {settings}")
    best = results[0][1]
    for label, names in (("chosen", chosen), ("held out", held_out), ("all", list(series))):
        s = scoring.nab_summary(files(best, names))
        profiles = ", ".join(f"{p} {s[f'nab_score_{p}']:.1f}" for p in scoring.NAB_PROFILES)
        print(f"{label:8s} ({len(names)} series): {profiles}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
