// Shared by the relabeling and adjudication pages: submission ids and the status toast.
window.labelrefine = (function () {
  "use strict";

  function newId() {
    // Works without a secure context (crypto.randomUUID does not).
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function say(text, isError) {
    const toast = document.getElementById("toast");
    toast.textContent = text;
    toast.className = isError ? "error" : "";
    toast.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.hidden = true; }, isError ? 6000 : 1500);
  }

  return { newId, say };
})();
