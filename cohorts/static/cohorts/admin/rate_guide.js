// The infusion page's drip-rate guide: a rate outside the protocol's range turns red as it is typed.
// The ranges come from the data attributes of #rate-guide (``rate_guide`` in cohorts/admin/infusion_forms.py).
(function () {
  var guide = document.getElementById("rate-guide");
  if (!guide) { return; }
  var ranges = JSON.parse(guide.dataset.ranges || "{}");
  function range() {
    var chosen = document.querySelector("select[name=participant]");
    var key = guide.dataset.participant || (chosen && chosen.value);
    return ranges[key] || null;
  }
  function check(input) {
    var note = input.parentNode.querySelector(".rate-warning");
    if (!note) {
      note = document.createElement("div");
      note.className = "rate-warning";
      note.setAttribute("role", "alert");
      input.parentNode.appendChild(note);
    }
    var raw = input.value.trim(), limits = range(), text = "";
    if (raw !== "") {
      var value = Number(raw);
      if (!/^[0-9]+([.][0-9]{1,2})?$/.test(raw) || !(value > 0)) {
        text = "Not a positive number of drops/min: it will be refused.";
      } else if (limits && (value < Number(limits[0]) || value > Number(limits[1]))) {
        text = "Outside the protocol's " + limits[0] + "\u2013" + limits[1] + " drops/min: it will be saved, " +
          "flagged, and a protocol deviation opened.";
      }
    }
    input.style.borderColor = text ? "#ba2121" : "";
    input.style.color = text ? "#ba2121" : "";
    note.textContent = text;
    note.style.color = "#ba2121";
    note.style.fontWeight = "bold";
  }
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.name && /drops_per_minute$/.test(target.name)) { check(target); }
  });
})();
