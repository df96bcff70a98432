"""The CTCAE term table as data: `load_ctcae_terms` loads it idempotently, audited, all or nothing."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from safety.management.commands.load_ctcae_terms import CTCAE_V5_SOCS
from safety.models import CtcaeTerm

pytestmark = pytest.mark.django_db
SHIPPED = Path(settings.BASE_DIR) / "safety" / "data" / "ctcae_v5_terms.json"
GENERAL = "General disorders and administration site conditions"


def _load(*args) -> dict:
    out = StringIO()
    call_command("load_ctcae_terms", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def _write(tmp_path: Path, content) -> Path:
    path = tmp_path / "terms.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_loading_the_term_table_creates_every_term_with_its_history_and_a_json_report():
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))["terms"]
    report = _load()
    assert report["created"] == [row["term"] for row in shipped]
    assert (report["unchanged"], report["updated"], report["differences_kept"]) == (0, [], [])
    assert CtcaeTerm.objects.count() == len(shipped)
    fever = CtcaeTerm.objects.get(term="Fever")
    assert (fever.soc, fever.meddra_code) == (GENERAL, "10016558")
    assert fever.history.get().history_change_reason == "Loaded from ctcae_v5_terms.json (CTCAE v5.0)"


def test_a_second_load_changes_nothing_and_says_so():
    first = _load()
    err = StringIO()
    out = StringIO()
    call_command("load_ctcae_terms", stdout=out, stderr=err)
    second = json.loads(out.getvalue())
    assert (second["created"], second["updated"], second["unchanged"]) == ([], [], len(first["created"]))
    assert "nothing changed" in err.getvalue()
    assert all(term.history.count() == 1 for term in CtcaeTerm.objects.all())


def test_a_term_edited_in_the_admin_is_kept_and_reported_unless_sync():
    _load()
    fever = CtcaeTerm.objects.get(term="Fever")
    fever.meddra_code = "10037660"
    fever.save()
    kept = _load()
    assert kept["differences_kept"] == ["Fever: meddra_code '10037660' → '10016558'"]
    assert CtcaeTerm.objects.get(term="Fever").meddra_code == "10037660"
    synced = _load("--sync")
    assert synced["updated"] == ["Fever: meddra_code '10037660' → '10016558'"]
    assert CtcaeTerm.objects.get(term="Fever").meddra_code == "10016558"


GOOD = {"term": "Fever", "soc": GENERAL, "meddra_code": "10016558"}


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"ctcae_version": "5.0", "terms": [GOOD, {"term": "Chills", "soc": "General disorders"}]},
         "terms.json: terms[1].soc: 'General disorders' is not a CTCAE v5.0 system organ class"),
        ({"ctcae_version": "5.0", "terms": [GOOD, {"term": "Chills"}]}, "terms.json: terms[1].soc: This field is"),
        ({"ctcae_version": "5.0", "terms": [GOOD, {"term": "Chills", "soc": GENERAL, "meddra_code": "1234"}]},
         "terms.json: terms[1].meddra_code: A MedDRA code is 8 digits"),
        ({"ctcae_version": "5.0", "terms": [GOOD, GOOD | {"term": "fever"}]}, "terms.json: terms[1].term: Duplicate"),
        ({"ctcae_version": "5.0", "terms": [GOOD, {"term": "Chi\x00lls", "soc": GENERAL}]}, "terms[1].term: Null"),
        ({"ctcae_version": "5.0", "terms": [GOOD, {"term": "Chills", "soc": GENERAL, "grade": 3}]},
         "terms.json: terms[1].grade: Unknown field"),
        ({"ctcae_version": "5.0", "terms": []}, "terms.json: terms: This list may not be empty"),
        ({"terms": [GOOD]}, "terms.json: ctcae_version: This field is required"),
        ([GOOD], "terms.json: the top level must be a JSON object"),
        ('{"ctcae_version": "5.0", "terms": [', "terms.json: not valid JSON"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_refused_naming_the_file_and_the_field_and_nothing_is_written(tmp_path, content, named):
    with pytest.raises(CommandError) as refused:
        _load("--file", str(_write(tmp_path, content)))
    assert named in str(refused.value)
    assert CtcaeTerm.objects.count() == 0


def test_a_missing_file_is_refused_with_its_path(tmp_path):
    with pytest.raises(CommandError, match="no such CTCAE term file"):
        _load("--file", str(tmp_path / "nowhere.json"))


def test_the_shipped_table_uses_ctcae_v5_names_and_covers_what_this_trial_sees():
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    terms = {row["term"]: row for row in data["terms"]}
    assert data["ctcae_version"] == "5.0" and 60 <= len(terms) <= 150
    assert {row["soc"] for row in terms.values()} <= CTCAE_V5_SOCS
    expected = {
        "Infusion related reaction": "Injury, poisoning and procedural complications",
        "Cytokine release syndrome": "Immune system disorders",
        "Anaphylaxis": "Immune system disorders",
        "Fever": GENERAL,
        "Hypotension": "Vascular disorders",
        "Thromboembolic event": "Vascular disorders",
        "Sinus tachycardia": "Cardiac disorders",
        "Hypoxia": "Respiratory, thoracic and mediastinal disorders",
        "Fracture": "Injury, poisoning and procedural complications",
        "Fall": "Injury, poisoning and procedural complications",
        "Alanine aminotransferase increased": "Investigations",
        "Anemia": "Blood and lymphatic system disorders",
        "Hypocalcemia": "Metabolism and nutrition disorders",
        "Lung infection": "Infections and infestations",
        "Death NOS": GENERAL,
    }
    assert {term: terms[term]["soc"] for term in expected} == expected
    assert all(
        row["meddra_code"] == "" or (len(row["meddra_code"]) == 8 and row["meddra_code"].isdigit())
        for row in terms.values()
    )


def test_make_run_loads_the_terms_right_after_the_protocol():
    lines = [line.strip() for line in (Path(settings.BASE_DIR) / "bin" / "run").read_text().splitlines()]
    protocol = lines.index("$PY manage.py load_protocol")
    assert lines[protocol + 1] == "$PY manage.py load_ctcae_terms"
