from django.core.management.base import BaseCommand

from safety.dosefinding import decision_table
from safety.management.commands._dosefinding import add_design_arguments, emit, fail


class Command(BaseCommand):
    help = (
        "A design's decision table: for n treated at the current dose and each number of DLTs, escalate, stay, "
        "de-escalate, eliminate or stop. BOIN as BOIN::get.boundary prints it; 3+3 for one context (a middle "
        "dose by default). JSON on stdout, or --format table; bad input exits with code 2."
    )

    def add_arguments(self, parser):
        add_design_arguments(parser)
        parser.add_argument("--max-n", type=int, default=18, help="largest number treated at a dose (default 18)")
        parser.add_argument(
            "--cohort-size", type=int, default=3, help="BOIN: columns shown in the table layout (default 3)"
        )
        parser.add_argument("--context", default="generic", help="3+3 only: generic (a middle dose), lowest or highest")

    def handle(self, *args, **options):
        try:
            table = decision_table(
                options["design"], variant=options["variant"], target=options["target"], max_n=options["max_n"],
                cohort_size=options["cohort_size"], cutoff_eli=options["cutoff_eli"], context=options["context"],
            )  # fmt: skip
        except ValueError as exc:
            fail(self, "decision_table", exc)
        emit(self, options, table.to_dict(), table.render())
