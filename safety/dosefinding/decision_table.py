"""Decision tables: for n treated at the current dose and each number of DLTs, what the design does.

Pure (stdlib only). Every cell is the answer of the rule in :mod:`safety.rules`:

* **BOIN** cells come from ``rules.boin_decision_table``, which reproduces
  ``BOIN::get.boundary(...)$full_boundary_tab``: escalate if DLTs <= the escalation boundary
  (``floor(lambda_e * n)``), de-escalate if DLTs >= the de-escalation boundary (``ceiling(lambda_d * n)``,
  capped at the elimination boundary), eliminate the dose and every higher dose if DLTs >= the elimination
  boundary (``Pr(p > target | data) > cutoff_eli``, only from n = 3). That is the table BOIN prints.
* **3+3** cells are ``rules.three_plus_three`` run on a history built for the cell. The 3+3 answer depends
  on more than the current dose's counts (is it the top dose? is the dose above ruled out? how many were
  treated below?), so a 3+3 table is for one *context*:

  - ``generic``: a middle dose: the dose below cleared 0 of 3, the dose above is untreated;
  - ``lowest``: dose 1, nothing else treated;
  - ``highest``: the top dose, reached after 0 of 3 at every dose below.

  A cell the 3+3 cannot reach in that context (e.g. 0 DLTs in 4 patients at a middle dose: 0 of 3
  escalates) still shows the rule's answer but is marked ``reachable=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

from safety import rules
from safety.dosefinding.designs import Design, check_whole_number, make_design

__all__ = ["THREE_PLUS_THREE_CONTEXTS", "DecisionRow", "DecisionTable", "decision_table", "render_decision_table"]

#: 3+3 contexts: (number of doses, history before the current dose, current dose, description).
THREE_PLUS_THREE_CONTEXTS: dict[str, tuple[int, str, int, str]] = {
    "generic": (
        3,
        "1NNN",
        2,
        "a middle dose (dose 2 of 3): the dose below cleared 0 of 3, the dose above is untreated",
    ),
    "lowest": (3, "", 1, "the lowest dose (dose 1 of 3), nothing else treated"),
    "highest": (3, "1NNN 2NNN", 3, "the highest dose (dose 3 of 3), reached after 0 of 3 at doses 1 and 2"),
}

_THREE_PLUS_THREE_MAX_N = 6  # rules.three_plus_three never treats more than 6 at a dose


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One cell: ``n`` treated at the current dose, ``dlts`` of them with a DLT.

    ``action`` is one of ``escalate``, ``stay``, ``de-escalate``, ``eliminate`` (BOIN: the dose and all
    higher doses are removed, go one dose down; at dose 1 the trial stops) and ``stop`` (3+3: the design
    ends; ``detail`` says which dose it recommends). ``next_dose`` is relative to the current dose
    (+1, 0, -1, or -2 and below when 3+3 picks a lower dose; ``None`` when the design stops with no dose).
    """

    n: int
    dlts: int
    action: str
    detail: str
    next_dose: int | None
    continue_: bool
    reachable: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "dlts": self.dlts,
            "action": self.action,
            "detail": self.detail,
            "next_dose": self.next_dose,
            "continue": self.continue_,
            "reachable": self.reachable,
        }


@dataclass(frozen=True, slots=True)
class DecisionTable:
    """A design's decision table as data; :meth:`render` gives plain text, :meth:`to_dict` JSON-ready data."""

    design: Design
    max_n: int
    cohort_size: int
    rows: tuple[DecisionRow, ...]
    context: str = ""
    context_description: str = ""
    boundaries: tuple[rules.BoinBoundary, ...] = ()
    lambda_e: float | None = None
    lambda_d: float | None = None
    notes: tuple[str, ...] = ()

    def row(self, n: int, dlts: int) -> DecisionRow:
        """The cell for ``n`` treated and ``dlts`` DLTs (``KeyError`` if outside the table)."""
        for row in self.rows:
            if row.n == n and row.dlts == dlts:
                return row
        raise KeyError((n, dlts))

    def to_dict(self) -> dict[str, object]:
        design = self.design.to_dict()
        design.pop("num_doses", None)
        body: dict[str, object] = {**design, "max_n": self.max_n, "cohort_size": self.cohort_size}
        if self.design.name == "boin":
            body.update(
                lambda_e=self.lambda_e,
                lambda_d=self.lambda_d,
                boundaries=[
                    {
                        "n": b.n,
                        "escalate_at_most": b.escalate_at_most,
                        "deescalate_at_least": b.deescalate_at_least,
                        "eliminate_at_least": b.eliminate_at_least,
                    }
                    for b in self.boundaries
                ],
            )
        else:
            body.update(context=self.context, context_description=self.context_description)
        body["rows"] = [row.to_dict() for row in self.rows]
        body["notes"] = list(self.notes)
        return body

    def render(self) -> str:
        return render_decision_table(self)


# ---------------------------------------------------------------------------
# BOIN
# ---------------------------------------------------------------------------


def _boin_rows(boundaries: list[rules.BoinBoundary]) -> list[DecisionRow]:
    rows = []
    for b in boundaries:
        for dlts in range(b.n + 1):
            # BOIN get.boundary: eliminate if DLTs >= elim; escalate if <= b.e; de-escalate if >= b.d
            if b.eliminate_at_least is not None and dlts >= b.eliminate_at_least:
                row = (
                    "eliminate",
                    f"eliminate this dose and all higher doses (>= {b.eliminate_at_least}); "
                    "go one dose down; at dose 1 stop the trial",
                    -1,
                )
            elif dlts <= b.escalate_at_most:
                row = ("escalate", f"at most {b.escalate_at_most} DLTs: escalate (stay at the highest dose)", 1)
            elif dlts >= b.deescalate_at_least:
                row = ("de-escalate", f"at least {b.deescalate_at_least} DLTs: de-escalate (stay at dose 1)", -1)
            else:
                row = ("stay", "between the boundaries: stay", 0)
            rows.append(DecisionRow(n=b.n, dlts=dlts, action=row[0], detail=row[1], next_dose=row[2], continue_=True))
    return rows


# ---------------------------------------------------------------------------
# 3+3
# ---------------------------------------------------------------------------


def _current_dose_cohorts(dose: int, n: int, dlts: int) -> str:
    """The current dose's patients as the notation: a cohort of 3, then the expansion."""
    first = min(n, 3)
    in_first = min(dlts, first)
    text = f"{dose}{'T' * in_first}{'N' * (first - in_first)}"
    if n > 3:
        rest = dlts - in_first
        text += f" {dose}{'T' * rest}{'N' * (n - 3 - rest)}"
    return text


def _three_plus_three_row(design: Design, prefix: str, dose: int, n: int, dlts: int) -> DecisionRow:
    history = f"{prefix} {_current_dose_cohorts(dose, n, dlts)}".strip()
    advice = design.recommend(history, strict=False)
    rec = advice.recommended_dose
    offset = None if rec is None else rec - dose
    if advice.continue_:
        action = "escalate" if offset and offset > 0 else "de-escalate" if offset and offset < 0 else "stay"
        if action == "stay":
            detail = "the cohort is not complete: continue" if n % 3 else f"expand to {n + 3} at this dose"
        elif action == "escalate":
            detail = "escalate to the next dose"
        else:
            detail = "de-escalate so that 6 are treated at the dose below"
    else:
        action = "stop"
        if rec is None:
            detail = "stop the trial: no dose is recommended"
        elif offset == 0:
            detail = "stop: recommend this dose"
        elif offset == -1:
            detail = "stop: recommend the dose below"
        else:
            detail = f"stop: recommend the dose {-offset} levels below"
    return DecisionRow(n=n, dlts=dlts, action=action, detail=detail, next_dose=offset, continue_=advice.continue_)


def _reachable_cells(design: Design, prefix: str, dose: int, max_n: int) -> set[tuple[int, int]]:
    """(n, DLTs) states the 3+3 can reach at the current dose, treating one patient at a time.

    From each reached state one more patient is treated (with or without a DLT) while the cohort of 3 is
    incomplete, or, at a complete cohort, while the design says "stay here and continue".
    """
    seen = {(0, 0)}
    frontier = [(0, 0)]
    while frontier:
        n, dlts = frontier.pop()
        if n >= max_n:
            continue
        if n % 3 == 0 and n > 0:
            row = _three_plus_three_row(design, prefix, dose, n, dlts)
            if not (row.continue_ and row.next_dose == 0):
                continue
        for nxt in ((n + 1, dlts), (n + 1, dlts + 1)):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    seen.discard((0, 0))
    return seen


def _three_plus_three_table(design_variant: str | None, context: str, max_n: int) -> DecisionTable:
    if context not in THREE_PLUS_THREE_CONTEXTS:
        known = ", ".join(THREE_PLUS_THREE_CONTEXTS)
        raise ValueError(f"unknown 3+3 context {context!r}: choose one of {known}")
    num_doses, prefix, dose, description = THREE_PLUS_THREE_CONTEXTS[context]
    design = make_design("3+3", num_doses=num_doses, variant=design_variant)
    shown = min(max_n, _THREE_PLUS_THREE_MAX_N)
    reachable = _reachable_cells(design, prefix, dose, shown)
    rows = []
    for n in range(1, shown + 1):
        for dlts in range(n + 1):
            row = _three_plus_three_row(design, prefix, dose, n, dlts)
            rows.append(
                DecisionRow(
                    n=row.n,
                    dlts=row.dlts,
                    action=row.action,
                    detail=row.detail,
                    next_dose=row.next_dose,
                    continue_=row.continue_,
                    reachable=(n, dlts) in reachable,
                )
            )
    notes = [
        f"Context: {description}. The 3+3 answer also depends on the doses around the current one; "
        "other contexts: " + ", ".join(c for c in THREE_PLUS_THREE_CONTEXTS if c != context) + ".",
        "Cells marked not reachable cannot occur in this context if the 3+3 is followed; the rule's answer "
        "is shown anyway.",
    ]
    if max_n > _THREE_PLUS_THREE_MAX_N:
        notes.append("The 3+3 never treats more than 6 patients at a dose: the table stops at n = 6.")
    return DecisionTable(
        design=design,
        max_n=shown,
        cohort_size=3,
        rows=tuple(rows),
        context=context,
        context_description=description,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def decision_table(
    design: str,
    *,
    variant: str | None = None,
    target: float = 0.3,
    max_n: int = 18,
    cohort_size: int = 3,
    cutoff_eli: float = 0.95,
    context: str = "generic",
) -> DecisionTable:
    """The decision table of ``design`` (``"3+3"`` or ``"boin"``) for n = 1..``max_n`` treated at a dose.

    BOIN rows cover every n from 1 to ``max_n`` (``get.boundary``'s ``full_boundary_tab``); the rendered
    text shows the columns for multiples of ``cohort_size`` (its ``boundary_tab``). 3+3 rows cover n = 1..6
    in ``context`` (see the module docstring); ``target``/``cutoff_eli`` are ignored for 3+3 and
    ``variant``/``context`` for BOIN.
    """
    check_whole_number(max_n, "max_n")
    check_whole_number(cohort_size, "cohort_size")
    made = make_design(design, num_doses=1, variant=variant, target=target, cutoff_eli=cutoff_eli)
    if made.name == "3+3":
        return _three_plus_three_table(made.variant, context, max_n)
    boundaries = rules.boin_decision_table(made.target, max_n, made.cutoff_eli)
    lambda_e, lambda_d = rules.boin_boundaries(made.target)
    notes = (
        "As BOIN::get.boundary: escalate if the number of DLTs <= the escalation boundary, de-escalate if >= "
        "the de-escalation boundary, eliminate (this dose and all higher doses) if >= the elimination boundary; "
        "no elimination before 3 patients (NA).",
        "At the highest dose 'escalate' means stay; at dose 1 'de-escalate' means stay; an eliminated dose "
        "above means stay; elimination of dose 1 stops the trial with no dose.",
    )
    return DecisionTable(
        design=made,
        max_n=max_n,
        cohort_size=cohort_size,
        rows=tuple(_boin_rows(boundaries)),
        boundaries=tuple(boundaries),
        lambda_e=lambda_e,
        lambda_d=lambda_d,
        notes=notes,
    )


def _render_boin(table: DecisionTable) -> str:
    columns = [b for b in table.boundaries if b.n % table.cohort_size == 0] or list(table.boundaries)
    labels = (
        ("Number of patients treated", lambda b: b.n),
        ("Escalate if # of DLT <=", lambda b: b.escalate_at_most),
        ("De-escalate if # of DLT >=", lambda b: b.deescalate_at_least),
        ("Eliminate if # of DLT >=", lambda b: "NA" if b.eliminate_at_least is None else b.eliminate_at_least),
    )
    width = max(len(label) for label, _ in labels)
    lines = [
        f"BOIN decision table: target {table.design.target:g}, lambda_e {table.lambda_e:.4f}, "
        f"lambda_d {table.lambda_d:.4f}, cutoff_eli {table.design.cutoff_eli:g}",
    ]
    for label, value in labels:
        lines.append(label.ljust(width) + "".join(f"{value(b)!s:>4}" for b in columns))
    return "\n".join(lines + [""] + [f"* {note}" for note in table.notes]) + "\n"


def _render_three_plus_three(table: DecisionTable) -> str:
    lines = [f"3+3 decision table ({table.design.variant}), {table.context_description}", ""]
    lines.append(f"{'treated':>7}  {'DLTs':>4}  {'action':<11}  what happens")
    for row in table.rows:
        mark = "" if row.reachable else "  (not reachable in this context)"
        lines.append(f"{row.n:>7}  {row.dlts:>4}  {row.action:<11}  {row.detail}{mark}")
    return "\n".join(lines + [""] + [f"* {note}" for note in table.notes]) + "\n"


def render_decision_table(table: DecisionTable) -> str:
    """Plain text: BOIN in the layout ``get.boundary`` prints, 3+3 one line per (treated, DLTs)."""
    return _render_boin(table) if table.design.name == "boin" else _render_three_plus_three(table)
