import json
import sys

from django.core.management.base import BaseCommand, CommandError

from safety.services import signature_report
from trial.models import Trial


class Command(BaseCommand):
    help = (
        "Check every safety-review signature: its HMAC under its key, the chain of previous digests, the "
        "trial's chain head and count, and that decided reviews keep their signatures. Prints JSON "
        '({"signatures_checked", "legacy_unkeyed", "intact", "heads", "problems": [{"trial", "sequence", "code", '
        '"message"}]}); exits 1 if anything is wrong.'
    )

    def add_arguments(self, parser):
        parser.add_argument("--trial", help="registry ID (default: every trial)")

    def handle(self, *args, trial=None, **options):
        selected = None
        if trial:
            selected = Trial.objects.filter(registry_id=trial).first()
            if selected is None:
                raise CommandError(f"No trial {trial!r}.")
        report = signature_report(trial=selected)
        self.stdout.write(json.dumps(report, ensure_ascii=False))
        if report["problems"]:
            sys.exit(1)
