// Relabeling page: keyboard + mouse answers, committed on the server before moving on.
(function () {
  "use strict";
  const panel = document.getElementById("panel");
  if (!panel || panel.dataset.page === "adjudicate") return;
  let shownAt = performance.now();
  let busy = false;

  const { newId, say } = window.labelrefine;

  function setBusy(on) {
    busy = on;
    panel.querySelectorAll("button").forEach((b) => { b.disabled = on; });
  }

  // POST JSON; retry with the SAME body (same submission id) until the server answers.
  async function post(url, body) {
    let wait = 250;
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        const r = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          credentials: "same-origin",
          body: JSON.stringify(body),
        });
        if (r.ok) return await r.json();
        if (r.status < 500) {
          const j = await r.json().catch(() => ({}));
          throw new Error(j.detail || ("HTTP " + r.status));
        }
      } catch (e) {
        if (!(e instanceof TypeError)) throw e;  // TypeError = network failure: retry
      }
      await new Promise((res) => setTimeout(res, wait));
      wait = Math.min(wait * 2, 4000);
    }
    throw new Error("server not reachable; your answer was not saved, please try again");
  }

  async function load(item) {
    const url = "/partials/item" + (item === undefined || item === null ? "" : "?item=" + item);
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) throw new Error("could not load the next item (HTTP " + r.status + ")");
    panel.innerHTML = await r.text();
    shownAt = performance.now();
  }

  async function answer(label, keep) {
    const item = document.getElementById("item");
    if (!item || busy) return;
    setBusy(true);
    try {
      const seconds = Math.round((performance.now() - shownAt) / 10) / 100;
      const body = { idx: Number(item.dataset.idx), submission_id: newId(), seconds: seconds };
      if (keep) body.keep = true; else body.label = label;
      const note = document.getElementById("note");
      if (note && note.value.trim()) body.note = note.value;
      await post("/api/answer", body);
      await load();
      say("saved");
    } catch (e) {
      say(e.message, true);
    } finally {
      setBusy(false);
    }
  }

  async function undo() {
    if (busy) return;
    setBusy(true);
    try {
      const res = await post("/api/undo", { submission_id: newId() });
      if (res.idx === null) { say("nothing to undo"); return; }
      await load(res.idx);
      say("undone: " + res.item);
    } catch (e) {
      say(e.message, true);
    } finally {
      setBusy(false);
    }
  }

  panel.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.dataset.action === "undo") undo();
    else if (btn.dataset.action === "keep") answer(null, true);
    else if (btn.dataset.label) answer(btn.dataset.label);
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest && ev.target.closest("textarea, input")) return;  // typing a note
    const key = ev.key.toLowerCase();
    if (key === "z") { ev.preventDefault(); undo(); return; }
    if (key === "k") {
      ev.preventDefault();
      if (panel.querySelector("button.keep")) answer(null, true);
      return;
    }
    if (key === "u") { ev.preventDefault(); answer("unsure"); return; }
    if (/^[1-9]$/.test(key)) {
      const choices = panel.querySelectorAll("button.choice");
      const btn = choices[Number(key) - 1];
      if (btn) { ev.preventDefault(); answer(btn.dataset.label); }
    }
  });
})();
