"""Shared plumbing of the dose-finding commands (a leading underscore: Django does not list it as a command).

The commands stay thin: parse, call ``safety.dosefinding``, print JSON (default) or plain text, and exit
with code 2 and a one-line message on bad input, as ``recommend_dose`` does.
"""

import json
import sys

from safety.dosefinding import make_design


def add_design_arguments(parser, *, doses: bool = False, design_required: bool = True) -> None:
    parser.add_argument("--design", required=design_required, help='"3+3" or "boin"')
    parser.add_argument(
        "--variant",
        default=None,
        help="3+3 only: escalation_default (R escalation's default), allow_deescalate (Korn) or confirm_on_six "
        "(NCT06949137); default escalation_default",
    )
    parser.add_argument("--target", type=float, default=0.3, help="BOIN target DLT rate (default 0.3)")
    parser.add_argument("--cutoff-eli", type=float, default=0.95, help="BOIN elimination cutoff (default 0.95)")
    if doses:
        parser.add_argument("--doses", type=int, default=3, help="number of dose levels (default 3)")
    parser.add_argument("--format", choices=("json", "table"), default="json", help="json (default) or table")


def design_from(options, *, num_doses: int):
    return make_design(
        options["design"], num_doses=num_doses, variant=options["variant"], target=options["target"],
        cutoff_eli=options["cutoff_eli"],
    )  # fmt: skip


def fail(command, name: str, exc: Exception) -> None:
    command.stderr.write(f"{name}: {exc}")
    sys.exit(2)


def emit(command, options, data: dict, text: str) -> None:
    if options["format"] == "table":
        command.stdout.write(text, ending="")
    else:
        command.stdout.write(json.dumps(data, ensure_ascii=False))
