// Reading page image viewer: the image at its stored resolution, zoomed and panned in place.
// Mouse: the wheel zooms around the pointer, drag pans, double-click toggles fit / 4x.
// Keys: + or = zoom in, - zoom out, 0 fit, arrows pan while zoomed. "1:1" shows one screen
// pixel per stored pixel; past that, pixels are drawn as squares (no smoothing).
(function () {
  "use strict";
  const panel = document.getElementById("panel");
  if (!panel || panel.dataset.page === "adjudicate") return;
  const MAX = 32;  // at most 32x the fitted size
  let view = { scale: 1, x: 0, y: 0 };
  let drag = null;

  const viewer = () => panel.querySelector(".viewer");
  const image = () => panel.querySelector(".viewer img");

  function clamp() {
    const v = viewer();
    const w = v.clientWidth, h = v.clientHeight;
    view.scale = Math.min(Math.max(view.scale, 1), MAX);
    view.x = Math.min(0, Math.max(w - w * view.scale, view.x));
    view.y = Math.min(0, Math.max(h - h * view.scale, view.y));
  }

  function render() {
    const v = viewer(), img = image();
    if (!v || !img) return;
    clamp();
    img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    // screen pixels per stored pixel
    const ratio = img.naturalWidth ? (v.clientWidth * view.scale) / img.naturalWidth : 0;
    v.classList.toggle("zoomed", view.scale > 1);
    v.classList.toggle("pixels", ratio > 1.01);
    v.dataset.scale = view.scale.toFixed(3);
    const label = panel.querySelector(".zoom-level");
    if (label) label.textContent = view.scale === 1 ? "fit" : Math.round(ratio * 100) + " %";
  }

  function zoomAt(factor, cx, cy) {
    const old = view.scale;
    const next = Math.min(Math.max(old * factor, 1), MAX);
    view.x = cx - (cx - view.x) * (next / old);
    view.y = cy - (cy - view.y) * (next / old);
    view.scale = next;
    render();
  }

  function centre() {
    const v = viewer();
    return [v.clientWidth / 2, v.clientHeight / 2];
  }

  function reset() {
    view = { scale: 1, x: 0, y: 0 };
    drag = null;
    render();
  }

  function oneToOne() {
    const v = viewer(), img = image();
    if (!v || !img || !img.naturalWidth) return;
    const [cx, cy] = centre();
    zoomAt(img.naturalWidth / v.clientWidth / view.scale, cx, cy);
  }

  function local(ev, v) {
    const r = v.getBoundingClientRect();
    return [ev.clientX - r.left - v.clientLeft, ev.clientY - r.top - v.clientTop];
  }

  panel.addEventListener("wheel", (ev) => {
    const v = ev.target.closest(".viewer");
    if (!v) return;
    ev.preventDefault();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ...local(ev, v));
  }, { passive: false });

  panel.addEventListener("pointerdown", (ev) => {
    const v = ev.target.closest(".viewer");
    if (!v || ev.button !== 0) return;
    drag = { id: ev.pointerId, x: ev.clientX - view.x, y: ev.clientY - view.y };
    v.setPointerCapture(ev.pointerId);
    v.classList.add("dragging");
  });
  panel.addEventListener("pointermove", (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    view.x = ev.clientX - drag.x;
    view.y = ev.clientY - drag.y;
    render();
  });
  function endDrag(ev) {
    if (!drag || ev.pointerId !== drag.id) return;
    drag = null;
    const v = viewer();
    if (v) v.classList.remove("dragging");
  }
  panel.addEventListener("pointerup", endDrag);
  panel.addEventListener("pointercancel", endDrag);

  panel.addEventListener("dblclick", (ev) => {
    const v = ev.target.closest(".viewer");
    if (!v) return;
    ev.preventDefault();
    if (view.scale > 1) reset(); else zoomAt(4, ...local(ev, v));
  });

  panel.addEventListener("click", (ev) => {
    if (ev.target.closest("button[data-zoom]")) oneToOne();
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest && ev.target.closest("textarea, input")) return;  // typing a note
    const v = viewer();
    if (!v) return;
    const step = 0.1 * v.clientWidth;
    const [cx, cy] = centre();
    const arrow = ev.key.startsWith("Arrow");
    if (arrow && view.scale === 1) return;  // nothing to pan: let the page scroll
    switch (ev.key) {
      case "+": case "=": zoomAt(1.5, cx, cy); break;
      case "-": case "_": zoomAt(1 / 1.5, cx, cy); break;
      case "0": reset(); break;
      case "ArrowLeft": view.x += step; render(); break;
      case "ArrowRight": view.x -= step; render(); break;
      case "ArrowUp": view.y += step; render(); break;
      case "ArrowDown": view.y -= step; render(); break;
      default: return;
    }
    ev.preventDefault();
  });

  // a new item (the panel is replaced after every answer): back to the fitted view
  new MutationObserver(reset).observe(panel, { childList: true });
  panel.addEventListener("load", (ev) => {
    if (ev.target === image()) render();
  }, true);
  window.addEventListener("resize", render);
  render();
})();
