from django.core.management.base import BaseCommand

from safety.dosefinding import dose_paths, flatten_paths, render_paths
from safety.management.commands._dosefinding import add_design_arguments, design_from, emit, fail


class Command(BaseCommand):
    help = (
        "Dose-transition pathways, as R escalation::get_dose_paths: every outcome (number of DLTs) of the next "
        'cohorts after the given outcomes ("1NNN 2NTN"), and where the design goes after each. JSON {design, '
        "tree, rows} on stdout, or --format table; bad input exits with code 2."
    )

    def add_arguments(self, parser):
        add_design_arguments(parser, doses=True)
        parser.add_argument("--outcomes", default="", help='outcomes so far, e.g. "1NNN"; "" for none (default)')
        parser.add_argument("--cohorts", type=int, default=2, help="number of future cohorts (default 2)")
        parser.add_argument("--cohort-size", type=int, default=3, help="patients per cohort (default 3)")

    def handle(self, *args, **options):
        try:
            design = design_from(options, num_doses=options["doses"])
            tree = dose_paths(
                design, options["outcomes"], cohorts=options["cohorts"], cohort_size=options["cohort_size"]
            )
        except ValueError as exc:  # OutcomeNotationError, an impossible 3+3 path, a bad parameter
            fail(self, "dose_paths", exc)
        data = {
            **design.to_dict(),
            "outcomes": options["outcomes"],
            "tree": tree.to_dict(),
            "rows": flatten_paths(tree),
        }
        emit(self, options, data, render_paths(tree))
