import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.actors import LOAD_PROTOCOL, system_actor
from core.errors import DomainError
from core.history import acting_as
from trial.services import protocol_load

DEFAULT_FILE = Path(settings.BASE_DIR) / "trial" / "protocols" / "NCT06949137.json"


class Command(BaseCommand):
    help = (
        "Load a trial protocol from its data file (default: NCT06949137). Idempotent: a second run "
        "changes nothing and says so. Prints a JSON report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="protocol JSON file")
        parser.add_argument(
            "--sync",
            action="store_true",
            help="also overwrite values that differ from the file (each change audited with the file as reason)",
        )

    def handle(self, *args, file: Path, sync: bool, **options):
        actor = system_actor(LOAD_PROTOCOL)
        try:
            with acting_as(actor, f"load_protocol {file.name}"):
                report = protocol_load(path=file, sync=sync, by=actor)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        if not report.changed:
            self.stderr.write(f"{report.registry_id} is already loaded: nothing changed.")
