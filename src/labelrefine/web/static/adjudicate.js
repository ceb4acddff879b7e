// Adjudication page: one click records the final label of a conflicting item.
(function () {
  "use strict";
  const toast = document.getElementById("toast");

  function newId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function say(text, isError) {
    toast.textContent = text;
    toast.className = isError ? "error" : "";
    toast.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.hidden = true; }, isError ? 6000 : 1500);
  }

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
      say("decided: " + btn.dataset.label + " (" + j.open_conflicts + " open)");
      if (j.open_conflicts === 0) window.location.reload();
    } catch (e) {
      say(e.message, true);
      section.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }
  });
})();
