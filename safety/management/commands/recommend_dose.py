import json
import sys

from django.core.management.base import BaseCommand

from safety import rules


class Command(BaseCommand):
    help = (
        'The escalation rule alone, on outcomes in the common notation ("1NNN 2NTN": a dose level, then N for '
        "no DLT or T for a DLT per patient). Prints JSON {recommended_dose, continue, reason}; bad notation "
        "exits with code 2."
    )

    def add_arguments(self, parser):
        parser.add_argument("--design", required=True, help='"3+3" or "boin"')
        parser.add_argument("--outcomes", required=True, help='e.g. "1NNN 2NTN"; "" for no patients yet')
        parser.add_argument("--target", type=float, default=0.3, help="BOIN target DLT rate (default 0.3)")
        parser.add_argument("--doses", type=int, default=3, help="number of dose levels (default 3)")
        parser.add_argument("--allow-deescalate", action="store_true", help="3+3 with de-escalation")
        parser.add_argument(
            "--confirm-on-six",
            action="store_true",
            help="3+3 in the variant that confirms the MTD on 6 patients (a trial's review uses its protocol's "
            "variant; without this flag the answers are R escalation's)",
        )

    def handle(self, *args, design, outcomes, target, doses, allow_deescalate, confirm_on_six, **options):
        try:
            if doses < 1:
                raise ValueError("--doses must be at least 1")
            if not 0 < target < 1:
                raise ValueError("--target must be between 0 and 1")
            if confirm_on_six and design.strip().lower() in rules.DESIGNS["3+3"]:
                recommendation = rules.three_plus_three(outcomes, num_doses=doses, confirm_on_six=True)
            else:
                recommendation = rules.recommend(
                    design, outcomes, num_doses=doses, target=target, allow_deescalate=allow_deescalate
                )
        except ValueError as exc:  # OutcomeNotationError, an unknown design, an impossible 3+3 path
            self.stderr.write(f"recommend_dose: {exc}")
            sys.exit(2)
        self.stdout.write(json.dumps(recommendation.to_dict(), ensure_ascii=False))
