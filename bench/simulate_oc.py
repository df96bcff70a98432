"""Simulated operating characteristics: how long 10,000 trials take, and how close they are to exact.

Times ``safety.dosefinding.simulate_operating_characteristics`` for the 3-dose 3+3 (both variants) and
for BOIN (target 0.3, cohorts of 3, 6 cohorts), each from a cold start (the design's decisions are
memoised per run, so the first trials pay for the rule evaluations). Each figure is the best of
``--repeat`` runs. Then compares each simulation with the exact enumeration of the same design
(largest difference in selection probability, in Monte Carlo standard errors). Not a test; see
bench/README.md.

    .venv/bin/python bench/simulate_oc.py [--trials 10000] [--repeat 3] [--rates 0.05,0.15,0.3]

Pure Python, no Django and no database. Prints a JSON summary.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safety.dosefinding import (  # after the path set-up
    exact_operating_characteristics,
    make_design,
    simulate_operating_characteristics,
)

GOAL_SECONDS = 10.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000, help="simulated trials per design (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per design; the best is reported (default 3)")
    parser.add_argument("--rates", default="0.05,0.15,0.3", help="true DLT rate per dose (default 0.05,0.15,0.3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    doses = len(rates)
    cases = [
        ("3+3 escalation_default", make_design("3+3", num_doses=doses), {}),
        ("3+3 confirm_on_six", make_design("3+3", num_doses=doses, variant="confirm_on_six"), {}),
        ("BOIN target 0.3, 6 cohorts of 3", make_design("boin", num_doses=doses, target=0.3), {"max_cohorts": 6}),
    ]
    results = []
    for label, design, kwargs in cases:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            oc = simulate_operating_characteristics(design, rates, trials=args.trials, seed=args.seed, **kwargs)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        exact = exact_operating_characteristics(design, rates, **kwargs)
        exact_seconds = time.perf_counter() - start
        worst = max(
            (abs(s - e) / se if se > 0 else 0.0)
            for s, e, se in zip(oc.selection, exact.selection, oc.selection_se, strict=True)
        )
        results.append({
            "design": label,
            "trials": args.trials,
            "best_seconds": round(min(times), 4),
            "all_seconds": [round(t, 4) for t in times],
            "trials_per_second": round(args.trials / min(times)),
            "goal_met": min(times) < GOAL_SECONDS,
            "exact_seconds": round(exact_seconds, 4),
            "selection_simulated": [round(s, 4) for s in oc.selection],
            "selection_exact": [round(s, 4) for s in exact.selection],
            "largest_selection_difference_in_se": round(worst, 2),
            "mean_sample_size_simulated": round(oc.mean_sample_size, 3),
            "mean_sample_size_exact": round(exact.mean_sample_size, 3),
        })  # fmt: skip
    summary = {
        "rates": rates,
        "seed": args.seed,
        "goal_seconds": GOAL_SECONDS,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "results": results,
    }
    print(json.dumps(summary, indent=2))
    return 0 if all(r["goal_met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
