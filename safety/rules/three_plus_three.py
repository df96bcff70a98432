"""The 3+3 design, matching ``escalation::get_three_plus_three`` (pure: stdlib only)."""

from __future__ import annotations

from safety.rules.notation import (
    Outcomes,
    Recommendation,
    coerce_outcomes,
    dlts_text,
    parse_outcomes,
    patients_text,
    tally,
)


class InconsistentThreePlusThreeError(ValueError):
    """The outcomes cannot have arisen by following the 3+3 rules (strict mode)."""


def check_three_plus_three_path(cohorts: Outcomes, *, allow_deescalate: bool = False) -> None:
    """Raise :class:`InconsistentThreePlusThreeError` if the path broke the 3+3 rules.

    Mirrors ``escalation::enforce_three_plus_three`` (called by ``three_plus_three``
    because its ``strict_mode = TRUE`` by default, and ``get_three_plus_three``
    never turns it off). The checks, in R's order:

    1. ``any(df_c$n > 6)``: no dose may have more than 6 patients;
    2. ``df_c$n > 3 & df_c$tox == 0``: a dose with no DLT should not have more
       than 3 patients. Not applied when ``allow_deescalate`` is true, because
       Korn's variant legitimately brings a DLT-free dose up to 6 after a
       de-escalation (e.g. ``1NNN 2NTT 1NNN``). The R source of the
       de-escalation-aware enforcer was not available to us; see module notes;
    3. the doses given must be contiguous (``some doses have been skipped``);
    4. at most one dose may have an incomplete cohort (``n %% 3 != 0``);
    5. every dose other than the last one given must have complete cohorts.

    Like R, this does not catch every deviation (R's own TODO: ``'1NTT 1N'``
    and ``'1NNN 1T'`` are not detected).
    """
    parsed = list(parse_outcomes(cohorts)) if isinstance(cohorts, str) else list(cohorts)
    if not parsed:
        return
    counts = tally(parsed)
    last_dose = parsed[-1].dose
    for dose, t in counts.items():
        if t.n > 6:
            raise InconsistentThreePlusThreeError(
                f"Inconsistent 3+3: dose {dose} has been given to {t.n} patients; 3+3 never treats more than 6."
            )
    if not allow_deescalate:
        for dose, t in counts.items():
            if t.n > 3 and t.tox == 0:
                raise InconsistentThreePlusThreeError(
                    f"Inconsistent 3+3: dose {dose} had no DLT but was given to {t.n} patients; "
                    "after 0 of 3 the trial should have escalated."
                )
    given = sorted(counts)
    if given[-1] - given[0] + 1 != len(given):
        missing = sorted(set(range(given[0], given[-1] + 1)) - set(given))
        raise InconsistentThreePlusThreeError(f"Inconsistent 3+3: dose(s) {', '.join(map(str, missing))} were skipped.")
    in_progress = [dose for dose, t in counts.items() if t.n % 3 != 0]
    if len(in_progress) > 1:
        raise InconsistentThreePlusThreeError(
            f"Inconsistent 3+3: several cohorts are in progress (doses {', '.join(map(str, in_progress))})."
        )
    for dose in in_progress:
        if dose != last_dose:
            raise InconsistentThreePlusThreeError(
                f"Inconsistent 3+3: the cohort at dose {dose} is incomplete ({patients_text(counts[dose].n)}) "
                f"but the last cohort was treated at dose {last_dose}."
            )


def three_plus_three(
    cohorts: Outcomes,
    *,
    num_doses: int,
    allow_deescalate: bool = False,
    strict: bool = True,
    confirm_on_six: bool = False,
) -> Recommendation:
    """Next-dose advice from the 3+3 design, matching ``escalation::get_three_plus_three``.

    Standard rules: escalate after 0/3; expand to 6 after 1/3; escalate after
    at most 1/6; stop escalating after 2 or more DLTs in 3 or in 6.

    Reference choices mirrored from ``escalation`` ``R/three_plus_three.R``
    (the version that implements ``allow_deescalate``), decided at the dose the
    *last* cohort received (``last_dose <- df$dose %>% tail(1)``):

    * No patients -> dose 1, continue (``if(length(last_dose) == 0) last_dose <- 1``
      then ``n_d < 3``).
    * Fewer than 3, or 4-5 patients at the current dose -> stay, continue
      (``if(n_d < 3)`` / ``else if(n_d < 6)``).
    * 0/3, or at most 1/6, at the **top dose** -> stop and recommend the top
      dose (``if(last_dose == num_doses) { next_dose = last_dose; cont = FALSE }``).
      Note: 0/3 at the top dose is *not* expanded to 6 first, and 1/6 at the
      top dose stops with the top dose as MTD.
    * 0/3, or at most 1/6, but the next dose already has 6 patients or at least
      2 DLTs -> stop and recommend the current dose
      (``df_c$n[last_dose + 1] >= 6 | df_c$tox[last_dose + 1] >= 2``).
    * 1/3 -> stay at the same dose, continue (even at the top dose).
    * 2+ DLTs in 3 or 6, ``allow_deescalate=False``: at dose 1 -> stop, no dose
      (``next_dose <- NA``); otherwise stop and recommend the dose below
      (``next_dose <- last_dose - 1; cont <- FALSE``) **even if that dose has
      only 3 patients** (R does not expand it to 6).
    * 2+ DLTs, ``allow_deescalate=True`` (Korn et al. 1994): at dose 1 -> stop,
      no dose; if the dose below has fewer than 6 patients -> de-escalate to it
      and continue (``if(df_c$n[last_dose - 1] < 6)``); otherwise stop and
      recommend the highest dose with at least 6 patients and at most 1 DLT
      (``filter(n >= 6 & tox <= 1)`` then ``tail(korn_criteria, 1)``), or no
      dose if there is none.
    * More than 6 patients at the current dose: R warns and then fails
      (``next_dose`` is never assigned); we raise
      :class:`InconsistentThreePlusThreeError`.

    ``strict=True`` (R's ``strict_mode = TRUE`` default) first checks the
    history with :func:`check_three_plus_three_path`.

    ``mtd`` is set to the recommended dose whenever the design stops with a
    dose (that is what ``recommended_dose`` means in R once ``continue`` is
    ``FALSE``). It is R's answer, not an MTD selection: the dose may have only
    3 patients, or be the top dose that nothing exceeded. A safety review
    records the MTD from :func:`three_plus_three_select_mtd` instead.

    ``confirm_on_six=True`` is the variant that never ends escalation on 3
    patients (the classic 3+3 as reviewed by Le Tourneau, Lee & Siu, JNCI
    2009;101:708-720: "the recommended dose ... is conventionally defined as the
    dose level just below this toxic dose level", with that dose confirmed on 6
    patients). It implies ``allow_deescalate`` (Korn's de-escalation to treat 6
    at the dose below) and, beyond R, expands a DLT-free cohort of 3 to 6 where
    R would stop on it: at the top dose, and below a dose already ruled out.
    It is not an option of ``escalation::get_three_plus_three``; with it off
    the answers are R's exactly.
    """
    allow_deescalate = allow_deescalate or confirm_on_six
    parsed = coerce_outcomes(cohorts, num_doses)
    if strict:
        check_three_plus_three_path(parsed, allow_deescalate=allow_deescalate)
    counts = tally(parsed, num_doses=num_doses)
    design = "3+3"

    def go(dose: int | None, cont: bool, reason: str) -> Recommendation:
        mtd = dose if (not cont and dose is not None) else None
        return Recommendation(recommended_dose=dose, continue_=cont, reason=reason, mtd=mtd, design=design)

    if not parsed:
        # R: if(length(last_dose) == 0) last_dose <- 1  -> n_d = 0 < 3 -> stay at dose 1
        return go(1, True, "No patients have been treated yet: start at dose 1.")

    dose = parsed[-1].dose
    n, tox = counts[dose].n, counts[dose].tox
    seen = f"{tox} of {n} patients at dose {dose} had a DLT"

    if n < 3:
        # R: if(n_d < 3) { next_dose <- last_dose; cont <- TRUE }
        return go(dose, True, f"{seen} so far; the cohort of 3 is not complete: continue at dose {dose}.")
    if 3 < n < 6:
        # R: else if(n_d < 6) { next_dose <- last_dose; cont <- TRUE }
        return go(dose, True, f"{seen} so far; the expansion to 6 is not complete: continue at dose {dose}.")
    if n > 6:
        # R: warning('Inconsistent 3+3: more than six patients at a dose-level.'), then no next_dose.
        raise InconsistentThreePlusThreeError(
            f"Inconsistent 3+3: dose {dose} has been given to {n} patients; 3+3 never treats more than 6."
        )
    if n == 3 and tox == 1:
        # R: else if(tox_d == 1) { next_dose = last_dose; cont = TRUE }
        return go(dose, True, f"{seen}: expand dose {dose} to 6 patients.")

    if (n == 3 and tox == 0) or (n == 6 and tox <= 1):
        # R: "Escalate if you can, or stop if at top dose"
        above = counts.get(dose + 1)
        ruled_out_above = above is not None and (above.n >= 6 or above.tox >= 2)
        if confirm_on_six and n == 3 and (dose == num_doses or ruled_out_above):
            # Beyond R: escalation would end here, so the dose is confirmed on 6 patients first.
            where = "the highest dose" if dose == num_doses else f"the highest dose below dose {dose + 1}"
            return go(
                dose,
                True,
                f"{seen}; dose {dose} is {where}, so it is confirmed on 6 patients before "
                f"escalation ends: expand dose {dose} to 6 patients.",
            )
        if dose == num_doses:
            # R: if(last_dose == num_doses) { next_dose = last_dose; cont = FALSE }
            return go(dose, False, f"{seen} and dose {dose} is the highest dose: stop and recommend dose {dose}.")
        if ruled_out_above:
            # R: (df_c$n[last_dose + 1] >= 6 | df_c$tox[last_dose + 1] >= 2) -> stop at current dose
            why = (
                f"{dlts_text(above.tox)} in {patients_text(above.n)}"
                if above.tox >= 2
                else f"{patients_text(above.n)} treated"
            )
            return go(
                dose,
                False,
                f"{seen}, and dose {dose + 1} has already been ruled out ({why}): stop and recommend dose {dose}.",
            )
        return go(dose + 1, True, f"{seen}: escalate to dose {dose + 1}.")

    # Two or more DLTs in 3 or in 6 patients.
    if dose == 1:
        # R: if(last_dose == 1) { next_dose <- NA; cont <- FALSE }  (with or without de-escalation)
        return go(
            None,
            False,
            f"{seen}, which is too toxic, and there is no lower dose: stop the trial; no dose is recommended.",
        )
    below = counts[dose - 1]
    if not allow_deescalate:
        # R: next_dose <- last_dose - 1; cont <- FALSE  (no check of how many were treated below)
        return go(
            dose - 1,
            False,
            f"{seen}, which is too toxic: stop escalation and recommend dose {dose - 1} "
            f"({below.tox} of {below.n} patients had a DLT there).",
        )
    if below.n < 6:
        # R (Korn): if(df_c$n[last_dose - 1] < 6) { next_dose <- last_dose - 1; cont <- TRUE }
        return go(
            dose - 1,
            True,
            f"{seen}, which is too toxic: de-escalate to dose {dose - 1}, "
            f"which has only {patients_text(below.n)}, so that 6 are treated there.",
        )
    # R (Korn): "the highest dose level (>= 1) in which 6 patients have been treated with <= 1 DLT"
    korn = [d for d, t in counts.items() if t.n >= 6 and t.tox <= 1]
    if korn:
        mtd = korn[-1]
        return go(
            mtd,
            False,
            f"{seen}, which is too toxic, and dose {dose - 1} already has {patients_text(below.n)}: "
            f"stop; dose {mtd} is the highest dose with at most 1 DLT in 6 or more patients.",
        )
    return go(
        None,
        False,
        f"{seen}, which is too toxic, and dose {dose - 1} already has {patients_text(below.n)}; "
        "no dose has at most 1 DLT in 6 or more patients: stop the trial; no dose is recommended.",
    )
