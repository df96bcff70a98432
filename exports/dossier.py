"""The escalation dossier of one safety review, as JSON and as PDF: the record an inspector is handed.

It holds the frozen snapshot the committee saw and its SHA-256 digest (recorded, and recomputed now),
the design's recommendation, the proposed decision and its rationale, every signature manifested as
21 CFR 11.50 asks (the signer's printed name, the date and time, the meaning), each signature's digest
recomputed, the trial's signature-chain verification (``safety.services.verify_signatures``) and the
cohort the decision opened. Signers appear by the printed name of their signature; no username.
"""

import io
import json
import zoneinfo
from functools import lru_cache
from pathlib import Path

from django.utils import timezone

from core.free_text import free_text_released
from exports.permissions import WITHHELD, Audience
from safety import selectors as safety_selectors
from safety import services as safety_services

MANIFESTATION = (
    "Each signature below is manifested as 21 CFR 11.50 requires: the printed name of the signer, the date "
    "and time the signature was executed, and its meaning. It was given with the signer's password re-entered "
    "(21 CFR 11.200) and is bound to the review's snapshot digest, the decision and the previous signature of "
    "the trial by its own digest, an HMAC-SHA256 under a key held outside the database (21 CFR 11.70)."
)
DIGEST_METHOD = "SHA-256 over the canonical JSON of the snapshot: keys sorted, no spaces, UTF-8 kept"


def _site_zone(review) -> zoneinfo.ZoneInfo:
    site = review.trial.sites.order_by("pk").first()
    return zoneinfo.ZoneInfo(site.time_zone if site else "UTC")


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _local(moment, zone) -> str:
    return f"{timezone.localtime(moment, zone):%Y-%m-%d %H:%M} ({zone.key})" if moment else ""


def _printed_name(user) -> str:
    return (user.get_full_name().strip() or "a committee member (no name on the account)") if user else ""


def _cohort(cohort) -> dict | None:
    if cohort is None:
        return None
    level = cohort.dose_level
    return {"id": cohort.pk, "sequence": cohort.sequence, "dose_level": level.level, "dose_label": level.label,
            "cells": level.cells, "state": cohort.state, "opened_at": _iso(cohort.opened_at)}  # fmt: skip


def dossier_data(review, audience: Audience) -> dict:
    """Everything the dossier shows, as plain JSON values (``review`` from ``exports.selectors``)."""
    zone = _site_zone(review)
    snapshot = review.snapshot
    recomputed = safety_selectors.sha256_hex(safety_selectors.canonical_json(snapshot))
    problems = safety_services.verify_signatures(trial=review.trial)
    signatures = sorted(review.signatures.all(), key=lambda s: s.sequence)
    mine = [p["message"] for p in problems if p["sequence"] in {s.sequence for s in signatures}]
    recommended = safety_services.protocol_recommendation(review)
    decisions = dict(review.Decision.choices)
    # A sponsor reads the review's reason and rationale and the signatures' comments only where a data manager
    # released them (core.free_text), as in the API; the snapshot as the API shows it to them.
    released = free_text_released([review, *signatures]) if audience.sponsor else None

    def text(record, value: str) -> str:
        shown = released is None or not value or (type(record)._meta.concrete_model, record.pk) in released
        return value if shown else WITHHELD

    return {
        "dossier": {"format": "escalation-dossier/1", "generated_at": _iso(timezone.now()),
                    "prepared_for": audience.label, "time_zone": zone.key},
        "trial": {"registry_id": review.trial.registry_id, "title": review.trial.title,
                  "protocol_version": review.trial.protocol_version, "design": review.trial.escalation_design,
                  "three_plus_three_variant": review.trial.three_plus_three_variant},
        "review": {"id": review.pk, "kind": review.kind, "kind_display": review.get_kind_display(),
                   "reason": text(review, review.reason), "state": review.state,
                   "state_display": review.get_state_display(),
                   "opened_at": _iso(review.opened_at), "cohort": _cohort(review.cohort)},
        "data_cut": snapshot.get("as_of"),
        # A sponsor reads a copy without unreleased free text or staff names; the digest is the frozen one's.
        "snapshot": safety_selectors.snapshot_for_sponsor(snapshot) if audience.sponsor else snapshot,
        "snapshot_redacted_for_sponsor": audience.sponsor,
        "snapshot_digest": {"recorded": review.snapshot_digest, "recomputed": recomputed,
                            "matches": recomputed == review.snapshot_digest, "method": DIGEST_METHOD},
        "recommendation": {"design": snapshot.get("design"), "protocol_recommends": recommended,
                           "protocol_recommends_display": decisions.get(recommended, recommended),
                           "by_design": snapshot.get("recommendations", {}),
                           "mtd_selection": snapshot.get("mtd_selection", {})},
        "decision": {"decision": review.decision, "display": decisions.get(review.decision, ""),
                     "rationale": text(review, review.rationale), "departs_from_recommendation": bool(review.decision)
                     and review.decision != recommended, "proposed_at": _iso(review.proposed_at),
                     "proposed_by": _printed_name(review.proposed_by), "decided_at": _iso(review.decided_at),
                     "declared_mtd_level": review.declared_mtd_level, "mtd_statement": review.mtd_statement,
                     "mtd_departs_from_rule": review.mtd_departs_from_rule,
                     "acknowledged_visits": review.acknowledged_visits},
        "manifestation": MANIFESTATION,
        "signatures": [
            {"sequence": s.sequence, "printed_name": s.signer_full_name, "meaning": s.meaning,
             "meaning_display": s.get_meaning_display(), "signed_at": _iso(s.signed_at),
             "signed_at_site": _local(s.signed_at, zone), "decision_signed": s.decision, "mtd_level": s.mtd_level,
             "comment": text(s, s.comment), "digest": s.digest, "previous_digest": s.previous_digest,
             "key_id": s.key_id, "digest_verified": safety_services.digest_matches(s)}
            for s in signatures
        ],
        "chain_verification": {"trial_chain_intact": not problems, "this_review_intact": not mine,
                               "problems": mine, "problems_elsewhere_in_trial": len(problems) - len(mine),
                               "method": "safety.services.verify_signatures: every signature's HMAC "
                               "recomputed under its key, each previous digest, the chain head and the count checked"},
        "opened_cohort": _cohort(review.resulting_cohort),
    }  # fmt: skip


def dossier_json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- PDF (reportlab, with the Vera fonts it ships: no system font needed) -------------------------

SUPERSCRIPTS = str.maketrans({"⁰": "^0", "¹": "^1", "²": "^2", "³": "^3", "⁴": "^4", "⁵": "^5", "⁶": "^6",
                              "⁷": "^7", "⁸": "^8", "⁹": "^9", "⁻": "^-"})  # fmt: skip


@lru_cache(maxsize=1)
def _fonts() -> frozenset[int]:
    """Register Vera (regular, bold) and a CJK fallback; return the code points Vera can draw."""
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    folder = Path(reportlab.__file__).parent / "fonts"
    regular = TTFont("Vera", str(folder / "Vera.ttf"))
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(TTFont("Vera-Bold", str(folder / "VeraBd.ttf")))
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # names in Chinese and other CJK scripts
    return frozenset(regular.face.charToGlyph)


def markup(text) -> str:
    """Paragraph markup for any text: escaped, with characters Vera lacks drawn in the CJK font."""
    from xml.sax.saxutils import escape

    covered = _fonts()
    out, run, fallback = [], [], False
    for char in str(text).translate(SUPERSCRIPTS):
        needs = ord(char) not in covered and char not in "\n\t"
        if needs != fallback and run:
            chunk = escape("".join(run))
            out.append(f'<font name="STSong-Light">{chunk}</font>' if fallback else chunk)
            run = []
        fallback = needs
        run.append(char)
    if run:
        chunk = escape("".join(run))
        out.append(f'<font name="STSong-Light">{chunk}</font>' if fallback else chunk)
    return "".join(out).replace("\n", "<br/>")


def _when(iso: str | None) -> str:
    """An ISO time of the JSON as the PDF prints it: ``2027-01-04 01:00:00 UTC``."""
    from datetime import UTC, datetime

    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if iso else ""


def dossier_pdf(data: dict) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Preformatted, SimpleDocTemplate, Spacer, Table, TableStyle

    _fonts()
    body = ParagraphStyle("body", fontName="Vera", fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    mono = ParagraphStyle("mono", parent=body, fontName="Courier", fontSize=6.5, leading=8)
    h1 = ParagraphStyle("h1", parent=body, fontName="Vera-Bold", fontSize=15, leading=19, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=body, fontName="Vera-Bold", fontSize=11, leading=14, spaceBefore=8, spaceAfter=3)

    def p(text, style=body):
        return Paragraph(markup(text), style)

    def table(rows, widths, header=True):
        cells = [[p(c, small) for c in row] for row in rows]
        t = Table(cells, colWidths=[w * mm for w in widths], repeatRows=1 if header else 0)
        t.setStyle(
            TableStyle(
                [("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
                + ([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf2"))] if header else [])
            )
        )
        return t

    review, trial, snap = data["review"], data["trial"], data["snapshot"]
    digest, decision = data["snapshot_digest"], data["decision"]
    cohort = review["cohort"]
    grades = snap.get("adverse_events", {}).get("by_worst_grade", {})
    story = [
        p(f"Escalation dossier — safety review {review['id']}", h1),
        p(f"{trial['registry_id']} — {trial['title']} (protocol version {trial['protocol_version']})"),
        p(f"Generated {_when(data['dossier']['generated_at'])} for: {data['dossier']['prepared_for']}. The site's "
          f"time zone is {data['dossier']['time_zone']}.", small),
        p("1. The review", h2),
        table([["Cohort", "Dose level", "Kind", "Opened", "Data cut", "State"],
               [str(cohort["sequence"]), f"{cohort['dose_level']} ({cohort['dose_label']}, {cohort['cells']} cells)",
                review["kind_display"], _when(review["opened_at"]), data["data_cut"] or "", review["state_display"]]],
              [16, 42, 34, 36, 22, 30]),
        p(f"Reason: {review['reason']}", small),
        p("2. The frozen snapshot and its digest", h2),
        p(f"Recorded digest: {digest['recorded']}", small),
        p(f"Recomputed now: {digest['recomputed']} — "
          f"{'MATCHES: the data are those the committee saw' if digest['matches'] else 'DOES NOT MATCH'}", small),
        p(f"Method: {digest['method']}. The full snapshot is listed in the appendix.", small),
        p(f"Outcomes (dose level, then N = no DLT, T = DLT per evaluable participant): {snap.get('outcomes') or '—'}"),
        table([["Dose level", "Label", "Cells", "Treated", "Evaluable", "DLTs"]]
              + [[str(d["dose_level"]), d["label"], str(d["cells"]), str(d["treated"]), str(d["evaluable"]),
                  str(d["dlts"])] for d in snap.get("dose_levels", [])], [22, 30, 36, 28, 28, 22]),
        Spacer(1, 4),
        table([["Study ID", "Cohort", "Dose level", "Evaluability", "Why"]]
              + [[x["study_id"], str(x["cohort"]), str(x["dose_level"]), x["evaluability"], x["reason"]]
                 for x in snap.get("participants", [])], [24, 16, 20, 30, 90]),
        Spacer(1, 4),
        p("Adverse events by worst grade: " + ", ".join(f"grade {g}: {n}" for g, n in grades.items())
          + f"; serious: {snap.get('adverse_events', {}).get('serious', 0)}", small),
    ]  # fmt: skip
    if snap.get("serious_events"):
        story.append(table([["Study ID", "Term", "Grade", "Relationship", "Expected", "Outcome", "Onset"]]
                           + [[e["study_id"], e["term"], str(e["grade"]), e["relationship"], str(e["expected"]),
                               e["outcome"], e["onset_date"]] for e in snap["serious_events"]],
                           [22, 44, 14, 26, 18, 28, 22]))  # fmt: skip
    if snap.get("dlt_candidates"):
        story.append(Spacer(1, 4))
        story.append(table([["Study ID", "Term", "Grade", "DLT decision", "Decided", "Reason"]]
                           + [[e["study_id"], e["term"], str(e["grade"]), e["status"], e.get("decided_at") or "",
                               e.get("reason") or ""] for e in snap["dlt_candidates"]],
                           [22, 36, 14, 22, 36, 50]))  # fmt: skip
    if snap.get("unrecorded_visits"):
        story.append(p("DLT-window visits missed or overdue at the data cut: " + "; ".join(
            f"{v['study_id']} {v['code']} ({v['status']}{': ' + v['missed_reason'] if v.get('missed_reason') else ''})"
            for v in snap["unrecorded_visits"]), small))  # fmt: skip
    rec = data["recommendation"]
    story += [p("3. The design's recommendation", h2),
              table([["Design", "Recommended dose", "Continue", "Reason"]]
                    + [[name, str(r.get("recommended_dose")), str(r.get("continue")), r.get("reason", "")]
                       for name, r in rec["by_design"].items()], [20, 30, 20, 110]),
              p(f"The protocol's design ({rec['design']}) recommends: {rec['protocol_recommends_display']} "
                f"({rec['protocol_recommends']})."),
              p("MTD selection: " + "; ".join(f"{name}: {m.get('statement', '')}"
                                              for name, m in rec["mtd_selection"].items()), small),
              p("4. The decision", h2),
              p(f"Decision: {decision['display'] or 'none proposed'} ({decision['decision'] or '—'})"
                + (" — departs from the recommendation" if decision["departs_from_recommendation"] else "")),
              p(f"Rationale: {decision['rationale'] or '—'}"),
              p(f"Proposed {_when(decision['proposed_at']) or '—'} by {decision['proposed_by'] or '—'}; effective "
                f"{_when(decision['decided_at']) or 'not (yet)'}."
                + (f" {decision['mtd_statement']}" if decision["mtd_statement"] else ""), small),
              p("5. Signatures (21 CFR 11.50)", h2), p(data["manifestation"], small), Spacer(1, 3)]  # fmt: skip
    sigs = data["signatures"]
    if sigs:
        story.append(table([["#", "Printed name", "Meaning", "Date and time (site)", "Date and time (UTC)",
                             "Decision signed", "Digest verified"]]
                           + [[str(s["sequence"]), s["printed_name"], s["meaning_display"], s["signed_at_site"],
                               _when(s["signed_at"]), s["decision_signed"], "yes" if s["digest_verified"] else "NO"]
                              for s in sigs], [8, 34, 18, 38, 38, 22, 22]))  # fmt: skip
        for s in sigs:
            story.append(p(f"Signed by {s['printed_name']} on {s['signed_at_site']} — meaning: "
                           f"{s['meaning_display']}. Digest {s['digest']}"
                           + (f". Comment: {s['comment']}" if s["comment"] else ""), small))  # fmt: skip
    else:
        story.append(p("No signature yet."))
    chain = data["chain_verification"]
    opened = data["opened_cohort"]
    story += [p("6. Signature-chain verification", h2),
              p("INTACT: every signature of this review matches what was signed, and the trial's chain is "
                 "unbroken." if chain["trial_chain_intact"] else
                 "PROBLEMS FOUND: " + ("; ".join(chain["problems"]) or "elsewhere in the trial's chain")
                 + f" ({chain['problems_elsewhere_in_trial']} elsewhere in the trial)."),
              p(chain["method"], small),
              p("7. The cohort it opened", h2),
              p(f"Cohort {opened['sequence']} at dose level {opened['dose_level']} ({opened['dose_label']}, "
                f"{opened['cells']} cells), opened {_when(opened['opened_at'])}." if opened else
                "None: the decision opened no cohort (or has not taken effect)."),
              p("Appendix: the frozen snapshot (canonical JSON; non-ASCII written as \\u escapes, the same JSON "
                "value the digest was computed over)", h2)]  # fmt: skip
    text = json.dumps(snap, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    story.append(Preformatted("\n".join(text[i : i + 125] for i in range(0, len(text), 125)), mono))

    out = io.BytesIO()

    def footer(canvas, doc):
        canvas.setFont("Vera", 7)
        canvas.drawString(15 * mm, 10 * mm, f"{trial['registry_id']} · review {review['id']} · snapshot "
                          f"{digest['recorded'][:16]}… · page {doc.page}")  # fmt: skip

    SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                      bottomMargin=16 * mm, title=f"Escalation dossier, review {review['id']}",
                      author="Dose-escalation cohort manager").build(story, onFirstPage=footer,
                                                                      onLaterPages=footer)  # fmt: skip
    return out.getvalue()
