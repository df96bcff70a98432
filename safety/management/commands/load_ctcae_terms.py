"""``load_ctcae_terms``: load the CTCAE term table from its data file (idempotent, JSON report).

The file is validated completely before anything is written (an error names the file and the field,
e.g. ``ctcae_v5_terms.json: terms[3].soc: …``); everything is written in one transaction, each row
with a history entry. A term edited in the admin since the last load is kept and reported under
``differences_kept``; ``--sync`` overwrites it with the file (audited).

The loader lives here rather than in ``safety/services.py`` because nothing else writes this table
(the admin's audited edits aside); move it there when a second caller appears.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework import serializers

from api.serializers import StrictSerializer
from core.actors import LOAD_CTCAE_TERMS, system_actor
from core.history import acting_as, audit
from safety.models import CtcaeTerm
from trial.protocol_file import error_paths

DEFAULT_FILE = Path(settings.BASE_DIR) / "safety" / "data" / "ctcae_v5_terms.json"

# The 26 system organ classes exactly as CTCAE v5.0 names them (a typo in the file is an error).
CTCAE_V5_SOCS = frozenset(
    {
        "Blood and lymphatic system disorders",
        "Cardiac disorders",
        "Congenital, familial and genetic disorders",
        "Ear and labyrinth disorders",
        "Endocrine disorders",
        "Eye disorders",
        "Gastrointestinal disorders",
        "General disorders and administration site conditions",
        "Hepatobiliary disorders",
        "Immune system disorders",
        "Infections and infestations",
        "Injury, poisoning and procedural complications",
        "Investigations",
        "Metabolism and nutrition disorders",
        "Musculoskeletal and connective tissue disorders",
        "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
        "Nervous system disorders",
        "Pregnancy, puerperium and perinatal conditions",
        "Psychiatric disorders",
        "Renal and urinary disorders",
        "Reproductive system and breast disorders",
        "Respiratory, thoracic and mediastinal disorders",
        "Skin and subcutaneous tissue disorders",
        "Social circumstances",
        "Surgical and medical procedures",
        "Vascular disorders",
    }
)

FIELDS = ("soc", "meddra_code")


class TermSchema(StrictSerializer):
    term = serializers.CharField(max_length=200)
    soc = serializers.CharField(max_length=200)
    meddra_code = serializers.RegexField(
        r"^[0-9]{8}$",
        max_length=16,
        required=False,
        allow_blank=True,
        default="",
        error_messages={"invalid": "A MedDRA code is 8 digits (or blank when not known)."},
    )

    def validate_soc(self, value: str) -> str:
        if value not in CTCAE_V5_SOCS:
            raise serializers.ValidationError(f"{value!r} is not a CTCAE v5.0 system organ class.")
        return value


class TermFileSchema(StrictSerializer):
    ctcae_version = serializers.CharField(max_length=16)
    source = serializers.CharField(required=False, allow_blank=True)
    notes = serializers.ListField(child=serializers.CharField(), required=False)
    terms = TermSchema(many=True, allow_empty=False)

    def validate(self, attrs):
        seen: dict[str, int] = {}
        for index, row in enumerate(attrs["terms"]):
            key = row["term"].casefold()
            if key in seen:
                raise serializers.ValidationError(
                    {f"terms[{index}].term": [f"Duplicate term {row['term']!r} (also terms[{seen[key]}])."]}
                )
            seen[key] = index
        return attrs


def read_term_file(path: Path) -> dict:
    """Parse and validate the whole file; raise CommandError naming the file and every bad field."""
    name = path.name
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{path}: no such CTCAE term file.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CommandError(f"{name}: not valid JSON ({exc}).") from None
    if not isinstance(raw, dict):
        raise CommandError(f"{name}: the top level must be a JSON object with a 'terms' list.")
    schema = TermFileSchema(data=raw)
    if not schema.is_valid():
        raise CommandError(f"{name}: " + "; ".join(error_paths(schema.errors)))
    return schema.validated_data


def ctcae_terms_load(*, path: Path, sync: bool = False, by=None) -> dict:
    """Create the file's terms that are missing; report the rest. One transaction, every save audited."""
    data = read_term_file(path)
    reason = f"Loaded from {path.name} (CTCAE v{data['ctcae_version']})"
    report = {
        "source": path.name,
        "ctcae_version": data["ctcae_version"],
        "created": [],
        "updated": [],
        "unchanged": 0,
        "differences_kept": [],
    }
    with transaction.atomic():
        existing = {
            t.term: t
            for t in CtcaeTerm.objects.select_for_update().filter(term__in=[row["term"] for row in data["terms"]])
        }
        for row in data["terms"]:
            term = existing.get(row["term"])
            if term is None:
                term = CtcaeTerm(**row)
                term.full_clean()
                audit(term, by=by, reason=reason).save()
                report["created"].append(row["term"])
                continue
            delta = {name: row[name] for name in FIELDS if getattr(term, name) != row[name]}
            if not delta:
                report["unchanged"] += 1
                continue
            line = f"{row['term']}: " + ", ".join(f"{k} {getattr(term, k)!r} → {v!r}" for k, v in delta.items())
            if not sync:
                report["differences_kept"].append(line)
                continue
            for name, value in delta.items():
                setattr(term, name, value)
            term.full_clean()
            audit(term, by=by, reason=reason).save()
            report["updated"].append(line)
    return report


class Command(BaseCommand):
    help = (
        "Load the CTCAE term table (default: safety/data/ctcae_v5_terms.json). Idempotent: a second run "
        "creates nothing and says so. Prints a JSON report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="CTCAE term JSON file")
        parser.add_argument(
            "--sync",
            action="store_true",
            help="also overwrite terms whose SOC or MedDRA code differs from the file (each change audited)",
        )

    def handle(self, *args, file: Path, sync: bool, **options):
        actor = system_actor(LOAD_CTCAE_TERMS)
        with acting_as(actor, f"load_ctcae_terms {file.name}"):
            report = ctcae_terms_load(path=file, sync=sync, by=actor)
        self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
        if not report["created"] and not report["updated"]:
            self.stderr.write(f"{report['source']}: every term is already loaded; nothing changed.")
