// Adjudication page: one click records the final label of a conflicting item.
(function () {
  "use strict";
  const { newId, say } = window.labelrefine;

  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button.decide");
    if (!btn) return;
    const section = btn.closest("section.conflict");
    section.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    const body = { idx: Number(section.dataset.idx), label: btn.dataset.label, submission_id: newId() };
    try {
      const r = await fetch("/api/adjudicate", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      const j = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(j.detail || ("HTTP " + r.status));
      section.remove();
      const named = btn.dataset.display ? " " + btn.dataset.display : "";
      say("decided: " + btn.dataset.label + named + " (" + j.open_conflicts + " open)");
      if (j.open_conflicts === 0) window.location.reload();
    } catch (e) {
      say(e.message, true);
      section.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }
  });
})();
