// Theme: the system's (prefers-color-scheme, followed when it changes) unless the header's
// toggle chose one, kept in localStorage. Set as <html data-theme> before the page is drawn
// (this file loads in <head>, not deferred).
(function () {
  "use strict";
  const KEY = "updraft-theme";
  const root = document.documentElement;
  const system = window.matchMedia("(prefers-color-scheme: dark)");
  let chosen = null;
  try {
    chosen = localStorage.getItem(KEY);
  } catch (e) {
    // Storage refused (private mode): the system's theme.
  }
  const follow = () => {
    root.dataset.theme = chosen === "dark" || chosen === "light" ? chosen : system.matches ? "dark" : "light";
  };
  follow();
  system.addEventListener("change", follow);
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    const dark = () => root.dataset.theme === "dark";
    const label = () => button.setAttribute("aria-label", dark() ? "Switch to light" : "Switch to dark");
    label();
    button.addEventListener("click", () => {
      chosen = dark() ? "light" : "dark";
      follow();
      try {
        localStorage.setItem(KEY, chosen);
      } catch (e) {
        // Not kept across pages; the toggle still works here.
      }
      label();
    });
  });
})();

// Updraft UI behaviour, no build step:
// - live pages: while <body data-live="1">, elements with data-live-id are refreshed from the
//   same URL every 2 s; a page where nothing runs looks again every 10 s (while its tab is
//   visible), so a run started elsewhere shows up; when the fresh page has parts this one
//   lacks (a new try, a new run), it is reloaded;
// - durations of running tries (data-since="<ms since the epoch>") tick every second;
// - log tails: <pre data-log-stream="URL"> follows a try's log over server-sent events;
// - forms with data-confirm ask first; toggles submit their form.
(function () {
  "use strict";
  const MAX_REFRESHES = 3600; // a bound on one page's polling; a reload starts again
  const LIVE_MS = 2000;
  const IDLE_MS = 10000;
  let refreshes = 0;

  function liveIds(doc) {
    return Array.from(doc.querySelectorAll("[data-live-id]"), (el) => el.dataset.liveId).join("\n");
  }

  function schedule() {
    setTimeout(refresh, document.body.dataset.live === "1" ? LIVE_MS : IDLE_MS);
  }

  function refresh() {
    if (refreshes++ > MAX_REFRESHES || !document.querySelector("[data-live-id]")) return;
    if (document.hidden) return schedule();
    fetch(location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => {
        const doc = new DOMParser().parseFromString(html, "text/html");
        if (liveIds(doc) !== liveIds(document)) {
          location.reload();
          return;
        }
        document.querySelectorAll("[data-live-id]").forEach((el) => {
          const fresh = doc.querySelector('[data-live-id="' + el.dataset.liveId + '"]');
          if (fresh && fresh.innerHTML !== el.innerHTML) {
            el.innerHTML = fresh.innerHTML;
            el.dispatchEvent(new CustomEvent("live:updated"));
          }
        });
        document.body.dataset.live = doc.body.dataset.live || "0";
        tick();
      })
      .catch(() => {})
      .finally(schedule);
  }

  // Same wording as the server's durations (`1.24 s`, `3m 05s`, `2h 03m`).
  function duration(ms) {
    if (ms < 1000) return Math.max(0, Math.round(ms)) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(2) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  }

  function tick() {
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = duration(Date.now() - Number(el.dataset.since));
    });
  }

  function followLog(pre) {
    const src = new EventSource(pre.dataset.logStream);
    src.onmessage = (e) => {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
      pre.append(document.createTextNode(e.data + "\n"));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    };
    src.addEventListener("end", () => src.close());
    src.onerror = () => src.close();
  }

  document.addEventListener("DOMContentLoaded", () => {
    schedule();
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("pre[data-log-stream]").forEach(followLog);
    document.querySelectorAll("form[data-confirm]").forEach((f) =>
      f.addEventListener("submit", (e) => {
        if (!confirm(f.dataset.confirm)) e.preventDefault();
      })
    );
    document.querySelectorAll("[data-submit-on-change]").forEach((el) =>
      el.addEventListener("change", () => el.form.requestSubmit())
    );
  });
})();

// Editor: "Validate" posts the form to /editor/validate and lists the errors; clicking an
// error moves the caret to its line.
(function () {
  "use strict";
  function gotoLine(ta, line, column) {
    if (!(line > 0)) return;
    const lines = ta.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const len = (lines[line - 1] || "").length;
    ta.focus();
    ta.setSelectionRange(start + Math.min(Math.max(column - 1, 0), len), start + len);
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 18;
    ta.scrollTop = Math.max(0, (line - 3) * lh);
  }
  function show(list, result) {
    list.textContent = "";
    if (result.valid) {
      const li = document.createElement("li");
      li.className = "ok";
      li.textContent = "Valid: DAG " + result.dag_id;
      list.append(li);
      return;
    }
    (result.errors || []).forEach((e) => {
      const li = document.createElement("li");
      li.className = "error";
      li.dataset.line = e.line;
      li.dataset.column = e.column;
      const pos = document.createElement("span");
      pos.className = "mono";
      pos.textContent = e.line + ":" + e.column;
      li.append(pos, " " + e.message);
      list.append(li);
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("editor-form");
    if (!form) return;
    const ta = document.getElementById("editor-content");
    const list = document.getElementById("editor-errors");
    list.addEventListener("click", (ev) => {
      const li = ev.target.closest("li[data-line]");
      if (li) gotoLine(ta, Number(li.dataset.line), Number(li.dataset.column));
    });
    const button = document.getElementById("editor-validate");
    button.addEventListener("click", () => {
      fetch(button.dataset.validateUrl, {
        method: "POST",
        credentials: "same-origin",
        body: new URLSearchParams(new FormData(form)),
      })
        .then((r) => r.json())
        .then((res) => show(list, res))
        .catch(() => show(list, { valid: false, errors: [{ line: 0, column: 0, message: "validation failed: reload the page" }] }));
    });
  });
})();

// Graph view: the drawing fits its panel; the wheel, the +/−/Fit buttons and the keys + − 0
// zoom, dragging and the arrow keys pan; pointing at a task highlights what it needs and what
// needs it. The view is kept across live refreshes (which redraw the SVG).
(function () {
  "use strict";
  const STEP = 1.25;
  function setup(wrap) {
    let view = null; // [x, y, w, h]; null: the whole drawing
    const svg = () => wrap.querySelector("svg.graph");
    const whole = (s) => [0, 0, Number(s.dataset.width) || 1, Number(s.dataset.height) || 1];
    function apply() {
      const s = svg();
      if (s) s.setAttribute("viewBox", (view || whole(s)).map((n) => n.toFixed(1)).join(" "));
    }
    // Drawing units per screen pixel ("meet" scales by the larger ratio).
    function unit(s, v) {
      const r = s.getBoundingClientRect();
      return Math.max(v[2] / Math.max(r.width, 1), v[3] / Math.max(r.height, 1));
    }
    function zoom(factor, at) {
      const s = svg();
      if (!s) return;
      const all = whole(s);
      const v = view || all;
      const w = Math.min(Math.max(v[2] * factor, all[2] / 25), all[2] * 2);
      const f = w / v[2];
      const c = at || [v[0] + v[2] / 2, v[1] + v[3] / 2];
      view = [c[0] - (c[0] - v[0]) * f, c[1] - (c[1] - v[1]) * f, v[2] * f, v[3] * f];
      apply();
    }
    function pan(dx, dy) {
      const s = svg();
      if (!s) return;
      const v = view || whole(s);
      view = [v[0] + dx, v[1] + dy, v[2], v[3]];
      apply();
    }
    function at(s, e) {
      const m = s.getScreenCTM();
      if (!m) return null;
      const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(m.inverse());
      return [p.x, p.y];
    }
    wrap.addEventListener("wheel", (e) => {
      const s = svg();
      if (!s) return;
      e.preventDefault();
      zoom(e.deltaY < 0 ? 1 / STEP : STEP, at(s, e));
    }, { passive: false });
    let drag = null;
    wrap.addEventListener("pointerdown", (e) => {
      const s = svg();
      if (!s || e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, moved: false, id: e.pointerId };
    });
    wrap.addEventListener("pointermove", (e) => {
      const s = svg();
      if (!drag || !s) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        wrap.setPointerCapture(drag.id);
        s.classList.add("panning");
      }
      const u = unit(s, view || whole(s));
      pan(-dx * u, -dy * u);
      drag.x = e.clientX;
      drag.y = e.clientY;
    });
    const end = () => {
      const s = svg();
      if (s) s.classList.remove("panning");
      if (drag && drag.moved) wrap.dataset.dragged = "1";
      drag = null;
    };
    wrap.addEventListener("pointerup", end);
    wrap.addEventListener("pointercancel", end);
    // A drag that ends on a task is not a click on it.
    wrap.addEventListener("click", (e) => {
      if (wrap.dataset.dragged === "1") {
        e.preventDefault();
        delete wrap.dataset.dragged;
      }
    }, true);
    wrap.addEventListener("keydown", (e) => {
      const s = svg();
      if (!s || e.altKey || e.ctrlKey || e.metaKey) return;
      const v = view || whole(s);
      const moves = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, -0.1], ArrowDown: [0, 0.1] };
      if (e.key === "+" || e.key === "=") zoom(1 / STEP);
      else if (e.key === "-" || e.key === "_") zoom(STEP);
      else if (e.key === "0") { view = null; apply(); }
      else if (moves[e.key]) pan(moves[e.key][0] * v[2], moves[e.key][1] * v[3]);
      else return;
      e.preventDefault();
    });
    document.querySelectorAll("[data-graph]").forEach((b) =>
      b.addEventListener("click", () => {
        if (b.dataset.graph === "in") zoom(1 / STEP);
        else if (b.dataset.graph === "out") zoom(STEP);
        else { view = null; apply(); }
        wrap.focus();
      })
    );
    // What a task needs (upstream) and what needs it (downstream), through the edges.
    function lineage(s, id) {
      const up = new Map();
      const down = new Map();
      s.querySelectorAll("path.edge").forEach((p) => {
        const f = p.dataset.from;
        const t = p.dataset.to;
        (down.get(f) || down.set(f, []).get(f)).push(t);
        (up.get(t) || up.set(t, []).get(t)).push(f);
      });
      const seen = new Set([id]);
      for (const next of [up, down]) {
        const todo = [id];
        while (todo.length) {
          for (const n of next.get(todo.pop()) || []) {
            if (!seen.has(n)) { seen.add(n); todo.push(n); }
          }
        }
      }
      return seen;
    }
    wrap.addEventListener("mouseover", (e) => {
      const s = svg();
      const node = e.target.closest && e.target.closest("g.node");
      if (!s || !node || drag) return;
      const keep = lineage(s, node.dataset.taskId);
      s.classList.add("focus");
      s.querySelectorAll("g.node").forEach((n) => n.classList.toggle("hl", keep.has(n.dataset.taskId)));
      s.querySelectorAll("path.edge").forEach((p) =>
        p.classList.toggle("hl", keep.has(p.dataset.from) && keep.has(p.dataset.to)));
    });
    wrap.addEventListener("mouseout", (e) => {
      const s = svg();
      if (!s || (e.relatedTarget && e.relatedTarget.closest && e.relatedTarget.closest("g.node"))) return;
      s.classList.remove("focus");
      s.querySelectorAll(".hl").forEach((n) => n.classList.remove("hl"));
    });
    wrap.addEventListener("live:updated", apply);
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".graph-wrap").forEach(setup);
  });
})();
