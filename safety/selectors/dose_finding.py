"""Dose-finding for one trial (issue 15): its designs with the protocol's parameters, their decision tables,
the dose-transition pathways of the next cohorts from the current data, and TITE-BOIN over the pending
participants' follow-up. Frozen into the review snapshot (``review_snapshot``) and read live by the
dashboard (``trial_dose_finding``).

Every answer comes from the pure ``safety.dosefinding`` functions over ``safety.rules``; nothing here decides.
TITE-BOIN is a second opinion only: the protocol's design (``Trial.escalation_design``) is 3+3 or BOIN, and
``safety.services.protocol_recommendation`` reads only that one.
"""

import datetime as dt

from safety import dosefinding

#: The pathways enumerate the next two cohorts (1 + 4 + 16 nodes for cohorts of 3), as the committee asks.
PATHWAY_COHORTS = 2
#: The BOIN table runs to the trial's planned enrollment, at most this many patients at a dose.
MAX_TABLE_N = 60
#: TITE-BOIN's accrual suspension (Yuan et al. 2018): more than half of the current dose's participants pending.
TITE_MAX_PENDING_FRACTION = 0.5
TITE_KEY = "tite-boin"

_ROLE = {True: "protocol", False: "second opinion"}
CONTEXT_ORDER = ("lowest", "generic", "highest")
CONTEXT_TITLES = {"lowest": "at dose 1", "generic": "at a middle dose", "highest": "at the highest dose"}


def trial_design(trial, name: str | None = None, *, num_doses: int) -> dosefinding.Design:
    """The design ``name`` (default: the protocol's) with the trial's parameters: the 3+3 variant, BOIN's target."""
    name = name or trial.escalation_design
    num_doses = max(num_doses, 1)
    if name == "3+3":
        return dosefinding.make_design("3+3", num_doses=num_doses, variant=trial.three_plus_three_variant)
    return dosefinding.make_design("boin", num_doses=num_doses, target=float(trial.boin_target_rate))


def three_plus_three_context(dose: int, num_doses: int) -> str:
    """Which 3+3 table applies at ``dose``: the lowest, the highest, or a middle dose."""
    if dose <= 1:
        return "lowest"
    return "highest" if dose >= num_doses else "generic"


def decision_tables(trial, *, num_doses: int) -> dict:
    """Both designs' decision tables with the trial's parameters, as plain data (frozen into a snapshot).

    3+3: one table per context (lowest, middle, highest dose), every cell with its action and detail. BOIN:
    the boundaries per number treated, n = 1 .. the planned enrollment (``get.boundary``'s table).
    """
    tables = {}
    for name in ("3+3", "boin"):
        design = trial_design(trial, name, num_doses=num_doses)
        entry: dict = {"label": design.label, "role": _ROLE[name == trial.escalation_design], **design.to_dict()}
        if name == "3+3":
            entry["contexts"] = {}
            for context in dosefinding.THREE_PLUS_THREE_CONTEXTS:
                table = dosefinding.decision_table("3+3", variant=design.variant, context=context)
                entry["contexts"][context] = {
                    "description": table.context_description,
                    "rows": [row.to_dict() for row in table.rows],
                }
            entry["notes"] = [table.notes[1]]
        else:
            max_n = min(max(trial.planned_enrollment, trial.cohort_size), MAX_TABLE_N)
            table = dosefinding.decision_table(
                "boin", target=design.target, max_n=max_n, cohort_size=trial.cohort_size, cutoff_eli=design.cutoff_eli
            )
            body = table.to_dict()
            entry.update(lambda_e=body["lambda_e"], lambda_d=body["lambda_d"], boundaries=body["boundaries"])
            entry.update(cohort_size=trial.cohort_size, notes=body["notes"])
        tables[name] = entry
    return tables


def _path_node(node: dosefinding.PathNode) -> dict:
    return {
        "outcomes": node.outcomes,
        "dose": node.dose,
        "recommended_dose": node.recommended_dose,
        "continue": node.continue_,
        "children": [_path_node(child) for child in node.children],
    }


def pathways(trial, outcomes: str, *, num_doses: int, cohorts: int = PATHWAY_COHORTS) -> dict:
    """Every outcome of the next ``cohorts`` cohorts from ``outcomes`` and where the protocol's design goes after
    each (R ``escalation::get_dose_paths``). A history the design cannot judge gives ``error`` instead."""
    design = trial_design(trial, num_doses=num_doses)
    body: dict = {"design": design.label, "from": outcomes, "cohorts": cohorts, "cohort_size": trial.cohort_size}
    try:
        root = dosefinding.dose_paths(design, outcomes, cohorts=cohorts, cohort_size=trial.cohort_size)
    except ValueError as exc:  # e.g. a history strict 3+3 cannot produce: show why rather than guess
        return body | {"error": str(exc), "tree": None}
    return body | {"error": "", "reason": root.reason, "tree": _path_node(root)}


def tite_participants(
    enrollments, verdicts: dict, *, confirmed: set[int], undecided: set[int], today: dt.date, window_days: int
) -> list[dosefinding.TiteParticipant]:
    """Treated participants in the order treated, as TITE-BOIN reads them: a confirmed DLT; no DLT once the
    window ended evaluable; pending (with the days of follow-up) while the window runs or a DLT candidate
    awaits the investigator. Not-infused, replaced and non-evaluable participants are left out, as in BOIN."""
    people = []
    for enrollment in enrollments:
        participant = enrollment.participant
        verdict = verdicts[participant.pk]
        if verdict.status not in ("evaluable", "pending") or participant.dlt_window_start is None:
            continue
        followup = max((today - participant.dlt_window_start).days, 0)
        if participant.pk in confirmed:
            outcome = True
        elif verdict.status == "pending" or participant.pk in undecided:
            outcome = None
        else:
            outcome, followup = False, max(followup, window_days)
        people.append((participant.dlt_window_start, enrollment.cohort.sequence, enrollment.slot, outcome, followup,
                       enrollment.cohort.dose_level.level))  # fmt: skip
    people.sort(key=lambda p: p[:3])
    return [
        dosefinding.TiteParticipant(dose=level, dlt=outcome, followup_days=followup, window_days=window_days)
        for _, _, _, outcome, followup, level in people
    ]


def tite_boin_opinion(trial, people: list[dosefinding.TiteParticipant], *, num_doses: int, current_dose: int) -> dict:
    """TITE-BOIN's answer (a second opinion) at the current dose, with the numbers it used."""
    current = current_dose if any(p.dose == current_dose for p in people) else None
    try:
        answer = dosefinding.tite_boin(
            people,
            num_doses=max(num_doses, 1),
            target=float(trial.boin_target_rate),
            current_dose=current,
            max_pending_fraction=TITE_MAX_PENDING_FRACTION,
        )
    except ValueError as exc:
        return {"recommended_dose": None, "continue": False, "reason": str(exc), "suspended": False, "numbers": {}}
    return answer.to_dict() | {"window_days": trial.dlt_window_days}


def outcome_string(enrollments, verdicts: dict, confirmed: set[int]) -> str:
    """The evaluable participants in the common notation, one group per cohort (``1NNN 2NTN``): a confirmed DLT
    is a T, an evaluable participant without one an N. ``enrollments`` in cohort then slot order."""
    groups: list[str] = []
    current: tuple[int, int] | None = None
    for enrollment in enrollments:
        if not verdicts[enrollment.participant.pk].evaluable:
            continue
        level = enrollment.cohort.dose_level.level
        group = (enrollment.cohort.sequence, level)
        if group != current:
            groups.append(str(level))
            current = group
        groups[-1] += "T" if enrollment.participant.pk in confirmed else "N"
    return " ".join(groups)


def dose_finding_section(trial, *, outcomes: str, num_doses: int) -> dict:
    """What the snapshot freezes besides the recommendations: the decision tables (with the protocol version
    they belong to) and the pathways of the next cohorts."""
    return {
        "protocol_version": trial.protocol_version,
        "decision_tables": decision_tables(trial, num_doses=num_doses),
        "pathways": pathways(trial, outcomes, num_doses=num_doses),
    }


# ---------------------------------------------------------------------------
# The frozen data shaped for the pages (review, printable page, dashboard)
# ---------------------------------------------------------------------------


def answer_label(recommended_dose: int | None, goes_on: bool) -> str:
    """``dose 2``; ``stop: dose 1`` when the design stops recommending a dose; ``stop: no dose``."""
    if goes_on:
        return f"dose {recommended_dose}" if recommended_dose is not None else "suspend accrual"
    return f"stop: dose {recommended_dose}" if recommended_dose is not None else "stop: no dose"


def pathway_rows(paths: dict) -> list[dict]:
    """The tree as a table, depth first (R ``as_tibble(paths)``): one row per outcome of a future cohort, with
    the path from the current data, the dose that cohort gets and where the design goes next."""
    rows: list[dict] = []

    def walk(node: dict, trail: tuple[str, ...]) -> None:
        for child in node["children"]:
            path = (*trail, f"{child['dose']}{child['outcomes']}")
            rows.append({
                "step": len(path), "outcomes": child["outcomes"], "dlts": child["outcomes"].count("T"),
                "dose": child["dose"], "path": " ".join(path),
                "recommended_dose": child["recommended_dose"], "continue": child["continue"],
                "answer": answer_label(child["recommended_dose"], child["continue"]),
            })  # fmt: skip
            walk(child, path)

    if paths and paths.get("tree"):
        walk(paths["tree"], ())
    return rows


def three_plus_three_grid(entry: dict, *, current: str = "") -> dict:
    """The 3+3 contexts side by side: one row per (treated, DLTs), one column per context."""
    contexts = [c for c in CONTEXT_ORDER if c in entry["contexts"]]
    cells = {context: {(r["n"], r["dlts"]): r for r in entry["contexts"][context]["rows"]} for context in contexts}
    keys = sorted({key for rows in cells.values() for key in rows})
    return {
        "columns": [
            {
                "context": c,
                "title": CONTEXT_TITLES.get(c, c),
                "description": entry["contexts"][c]["description"],
                "current": c == current,
            }
            for c in contexts
        ],
        "rows": [{"n": n, "dlts": y, "cells": [cells[c].get((n, y)) for c in contexts]} for n, y in keys],
    }


def boin_grid(entry: dict) -> list[dict]:
    """BOIN's boundaries as ``get.boundary`` prints them: one row per rule, one column per number treated."""
    bounds = entry["boundaries"]
    return [
        {"label": "Number of patients treated", "values": [b["n"] for b in bounds], "head": True},
        {"label": "Escalate if # of DLT ≤", "values": [b["escalate_at_most"] for b in bounds]},
        {"label": "De-escalate if # of DLT ≥", "values": [b["deescalate_at_least"] for b in bounds]},
        {"label": "Eliminate if # of DLT ≥", "values": [
            "NA" if b["eliminate_at_least"] is None else b["eliminate_at_least"] for b in bounds
        ]},
    ]  # fmt: skip


def dose_finding_display(snapshot: dict) -> dict:
    """What the review page and its printable page show from a frozen snapshot (empty for older snapshots)."""
    section = snapshot.get("dose_finding")
    if not section:
        return {}
    paths = section["pathways"]
    tables = section["decision_tables"]
    num_doses = len(snapshot.get("dose_levels", [])) or 1
    tree = paths.get("tree")
    next_dose = tree["recommended_dose"] if tree and tree["continue"] else None
    current = three_plus_three_context(next_dose, num_doses) if next_dose else ""
    return {
        "protocol_version": section["protocol_version"],
        "frozen": True,
        "design": snapshot.get("design"),
        "three": tables["3+3"],
        "three_grid": three_plus_three_grid(tables["3+3"], current=current),
        "boin": tables["boin"],
        "boin_grid": boin_grid(tables["boin"]),
        "paths": paths,
        "path_rows": pathway_rows(paths),
        "next_dose": next_dose,
        "tite": snapshot.get("recommendations", {}).get(TITE_KEY),
    }


def protocol_tables_display(trial) -> dict:
    """The decision tables of the trial's current parameters and protocol version (the protocol admin), shaped as
    :func:`dose_finding_display` shapes a snapshot's."""
    num_doses = trial.dose_levels.count()
    tables = decision_tables(trial, num_doses=num_doses)
    return {
        "protocol_version": trial.protocol_version,
        "design": trial.escalation_design,
        "three": tables["3+3"],
        "three_grid": three_plus_three_grid(tables["3+3"]),
        "boin": tables["boin"],
        "boin_grid": boin_grid(tables["boin"]),
    }
