import json
import sys

from django.core.management.base import BaseCommand, CommandError

from safety.models import SignOff
from safety.services import verify_signatures
from trial.models import Trial


class Command(BaseCommand):
    help = (
        "Check every safety-review signature: its SHA-256 digest over what was signed and the chain to the "
        "previous signature. Prints JSON; exits 1 and says where the chain breaks if anything was tampered with."
    )

    def add_arguments(self, parser):
        parser.add_argument("--trial", help="registry ID (default: every trial)")

    def handle(self, *args, trial=None, **options):
        selected = None
        if trial:
            selected = Trial.objects.filter(registry_id=trial).first()
            if selected is None:
                raise CommandError(f"No trial {trial!r}.")
        problems = verify_signatures(trial=selected)
        checked = SignOff.objects.filter(trial=selected).count() if selected else SignOff.objects.count()
        self.stdout.write(
            json.dumps(
                {"signatures_checked": checked, "intact": not problems, "problems": problems}, ensure_ascii=False
            )
        )
        if problems:
            sys.exit(1)
