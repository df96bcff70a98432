"""Writes to the protocol tables. Every write is audited (simple-history) in the same transaction."""

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.db import models, transaction

from core.history import audit
from trial.models import DoseLevel, EligibilityCriterion, Site, Trial, VisitDefinition
from trial.protocol_file import read_protocol_file

TRIAL_FIELDS = (
    "title",
    "short_title",
    "phase",
    "design",
    "product",
    "sponsor",
    "planned_enrollment",
    "status",
    "protocol_version",
    "eligible_sex",
    "min_age_years",
    "max_age_years",
)


@dataclass
class LoadReport:
    registry_id: str
    source: str
    created: bool = False
    changed: bool = False
    changes: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "registry_id": self.registry_id,
            "source": self.source,
            "created": self.created,
            "changed": self.changed,
            "changes": self.changes,
            "differences_kept": self.differences,
        }


def _normalise(value):
    return Decimal(value) if isinstance(value, Decimal | float) else value


def _diff(instance: models.Model, wanted: dict) -> dict:
    return {name: value for name, value in wanted.items() if _normalise(getattr(instance, name)) != _normalise(value)}


def _upsert_children(trial, model, key: str, rows: list[dict], *, sync: bool, by, reason, report, label):
    existing = {getattr(obj, key): obj for obj in model.objects.filter(trial=trial)}
    for row in rows:
        obj = existing.get(row[key])
        if obj is None:
            report.changes.append(f"{label} {row[key]}: added")
            audit(model(trial=trial, **row), by=by, reason=reason).save()
            continue
        delta = _diff(obj, row)
        if not delta:
            continue
        line = f"{label} {row[key]}: " + ", ".join(f"{k} {getattr(obj, k)!r} → {v!r}" for k, v in delta.items())
        if sync:
            for name, value in delta.items():
                setattr(obj, name, value)
            audit(obj, by=by, reason=reason).save()
            report.changes.append(line)
        else:
            report.differences.append(line)
    for extra in sorted(set(existing) - {row[key] for row in rows}, key=str):
        report.differences.append(f"{label} {extra}: in the database, not in the file (kept)")


def protocol_load(*, path: Path, by=None, sync: bool = False) -> LoadReport:
    """Load a protocol data file.

    A new trial is created whole. For a trial already loaded nothing changes unless ``sync`` is
    set: parameters edited in the admin since the load are reported as differences and kept, so
    ``make run`` (which runs this on every start) never undoes a data manager's audited edit.
    The file is validated completely before anything is written; it all happens in one transaction.
    """
    data = read_protocol_file(path)
    report = LoadReport(registry_id=data["registry_id"], source=path.name)
    reason = f"Loaded from protocol file {path.name} (version {data['protocol_version']})"
    trial_values = {name: data[name] for name in TRIAL_FIELDS} | dict(data["parameters"])

    with transaction.atomic():
        trial = Trial.objects.select_for_update().filter(registry_id=data["registry_id"]).first()
        if trial is None:
            trial = audit(Trial(registry_id=data["registry_id"], **trial_values), by=by, reason=reason)
            trial.full_clean()
            trial.save()
            report.created = True
            report.changes.append(f"trial {trial.registry_id}: created")
        else:
            # The file's status applies when the trial is created; after that only the committee's
            # decisions (stop, MTD) move it, so --sync never reopens a stopped trial.
            delta = _diff(trial, {k: v for k, v in trial_values.items() if k != "status"})
            lines = [f"trial.{k}: {getattr(trial, k)!r} → {v!r}" for k, v in delta.items()]
            if delta and sync:
                for name, value in delta.items():
                    setattr(trial, name, value)
                audit(trial, by=by, reason=reason).save()
                report.changes += lines
            else:
                report.differences += lines
        children = (
            (Site, "name", data["sites"], "site"),
            (DoseLevel, "level", data["dose_levels"], "dose level"),
            (EligibilityCriterion, "code", [dict(c, order=i) for i, c in enumerate(data["criteria"], 1)], "criterion"),
            (VisitDefinition, "code", data["visit_schedule"], "visit"),
        )
        for model, key, rows, label in children:
            _upsert_children(
                trial, model, key, rows, sync=sync or report.created, by=by, reason=reason, report=report, label=label
            )
        report.changed = bool(report.changes)
    return report
