from django.core.management.base import BaseCommand

from safety.dosefinding import exact_operating_characteristics, simulate_operating_characteristics
from safety.management.commands._dosefinding import add_design_arguments, design_from, emit, fail

#: BOIN's default number of cohorts here: 6 cohorts of 3 = 18, the protocol's planned enrollment.
DEFAULT_BOIN_COHORTS = 6


def _rates(text: str) -> list[float]:
    rates = []
    for index, part in enumerate(text.split(","), start=1):
        try:
            rates.append(float(part))
        except ValueError:
            raise ValueError(f"--true-rates: value {index} ({part.strip()!r}) is not a number") from None
    return rates


class Command(BaseCommand):
    help = (
        "Operating characteristics of a design under true DLT rates: per dose the probability of selection as "
        "MTD, mean number treated and of DLTs; early stopping, MTD not reached (3+3), mean sample size. Seeded "
        "simulation (or --exact enumeration). JSON on stdout, or --format table; bad input exits with code 2."
    )

    def add_arguments(self, parser):
        add_design_arguments(parser)
        parser.add_argument("--true-rates", required=True, help="true DLT probability per dose, e.g. 0.05,0.15,0.3")
        parser.add_argument("--trials", type=int, default=10_000, help="number of simulated trials (default 10000)")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument("--cohort-size", type=int, default=3, help="patients per cohort (default 3)")
        parser.add_argument(
            "--cohorts", type=int, default=None,
            help=f"BOIN: number of cohorts of a trial (default {DEFAULT_BOIN_COHORTS}); 3+3: an optional cap",
        )  # fmt: skip
        parser.add_argument("--n-earlystop", type=int, default=None, help="BOIN get.oc's n.earlystop (default off)")
        parser.add_argument("--exact", action="store_true", help="enumerate every outcome instead of simulating")

    def handle(self, *args, **options):
        try:
            rates = _rates(options["true_rates"])
            design = design_from(options, num_doses=len(rates))
            cohorts = options["cohorts"]
            if cohorts is None and design.name == "boin":
                cohorts = DEFAULT_BOIN_COHORTS
            common = {"cohort_size": options["cohort_size"], "max_cohorts": cohorts,
                      "n_earlystop": options["n_earlystop"]}  # fmt: skip
            if options["exact"]:
                oc = exact_operating_characteristics(design, rates, **common)
            else:
                oc = simulate_operating_characteristics(
                    design, rates, trials=options["trials"], seed=options["seed"], **common
                )
        except ValueError as exc:
            fail(self, "simulate_design", exc)
        emit(self, options, oc.to_dict(), oc.render())
