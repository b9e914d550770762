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
          if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
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
