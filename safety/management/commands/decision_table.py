from django.core.management.base import BaseCommand

from safety import selectors
from safety.dosefinding import THREE_PLUS_THREE_CONTEXTS, decision_table
from safety.management.commands._dosefinding import add_design_arguments, emit, fail
from trial.models import Trial


def _trial_tables(registry_id: str) -> tuple[dict, str]:
    """The protocol's tables (both designs, the trial's parameters), as a review freezes them, and as text."""
    trial = Trial.objects.filter(registry_id=registry_id).first()
    if trial is None:
        raise ValueError(f"no trial {registry_id!r}")
    tables = selectors.decision_tables(trial, num_doses=trial.dose_levels.count())
    texts = [
        decision_table("3+3", variant=trial.three_plus_three_variant, context=context).render()
        for context in THREE_PLUS_THREE_CONTEXTS
    ]
    boin = tables["boin"]
    texts.append(
        decision_table("boin", target=boin["target"], max_n=boin["boundaries"][-1]["n"],
                       cohort_size=trial.cohort_size, cutoff_eli=boin["cutoff_eli"]).render()
    )  # fmt: skip
    head = f"{trial.registry_id}, protocol version {trial.protocol_version}; the protocol's design: "
    head += trial.escalation_design
    data = {"trial": trial.registry_id, "protocol_version": trial.protocol_version, "design": trial.escalation_design,
            "decision_tables": tables}  # fmt: skip
    return data, "\n".join([head, "", *texts])


class Command(BaseCommand):
    help = (
        "A design's decision table: for n treated at the current dose and each number of DLTs, escalate, stay, "
        "de-escalate, eliminate or stop. BOIN as BOIN::get.boundary prints it; 3+3 for one context (a middle "
        "dose by default). With --trial, both tables of that trial's protocol version and parameters, as a "
        "review freezes them. JSON on stdout, or --format table; bad input exits with code 2."
    )

    def add_arguments(self, parser):
        add_design_arguments(parser, design_required=False)
        parser.add_argument("--trial", default=None, help="a registry ID: the protocol's tables (no --design)")
        parser.add_argument("--max-n", type=int, default=18, help="largest number treated at a dose (default 18)")
        parser.add_argument(
            "--cohort-size", type=int, default=3, help="BOIN: columns shown in the table layout (default 3)"
        )
        parser.add_argument("--context", default="generic", help="3+3 only: generic (a middle dose), lowest or highest")

    def handle(self, *args, **options):
        try:
            if options["trial"] is not None:
                if options["design"] is not None:
                    raise ValueError("--trial takes the protocol's own designs: leave out --design")
                data, text = _trial_tables(options["trial"])
                emit(self, options, data, text)
                return
            if options["design"] is None:
                raise ValueError("give --design (3+3 or boin) or --trial")
            table = decision_table(
                options["design"], variant=options["variant"], target=options["target"], max_n=options["max_n"],
                cohort_size=options["cohort_size"], cutoff_eli=options["cutoff_eli"], context=options["context"],
            )  # fmt: skip
        except ValueError as exc:
            fail(self, "decision_table", exc)
        emit(self, options, table.to_dict(), table.render())
