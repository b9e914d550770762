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

// What the scripts below share: durations worded as the server words them (`1.24 s`,
// `3m 05s`, `2h 03m`).
window.Updraft = {
  duration(ms) {
    if (ms < 1000) return Math.max(0, Math.round(ms)) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(2) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  },
};

// Times: the server writes them in UTC ("2026-12-04 04:58:31 UTC", `fmt_time`); they are shown
// in the browser's zone with the UTC time on hover, unless the header's zone button chose UTC
// (kept in localStorage). A converted element keeps its UTC text in data-utc, so switching
// back needs no reload. The live refresh converts the fresh copy before comparing it, so an
// unchanged part is not redrawn.
window.Updraft.zone = (function () {
  "use strict";
  const KEY = "updraft-zone";
  const UTC_TEXT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) UTC$/;
  let utc = false;
  try {
    utc = localStorage.getItem(KEY) === "utc";
  } catch (e) {
    // Storage refused: the browser's zone.
  }
  const pad = (n) => String(n).padStart(2, "0");
  const zoneName = (d) => {
    try {
      const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
        .formatToParts(d)
        .find((p) => p.type === "timeZoneName");
      return part ? part.value : "";
    } catch (e) {
      return "";
    }
  };
  const local = (text) => {
    const m = UTC_TEXT.exec(text);
    if (!m) return null;
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneName(d)}`.trim();
  };
  // Converts every time under `root` (a document or an element) to the chosen zone.
  function apply(root) {
    const doc = root.ownerDocument || root;
    const walker = doc.createTreeWalker(root.body || root, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || /^(TEXTAREA|SCRIPT|STYLE|OPTION)$/.test(el.tagName)) continue;
      const text = n.nodeValue.trim();
      if (el.dataset.utc || UTC_TEXT.test(text)) found.push(n);
    }
    for (const n of found) {
      const el = n.parentElement;
      const original = el.dataset.utc || n.nodeValue.trim();
      if (!el.dataset.utc) {
        el.dataset.utc = original;
        const title = el.getAttribute("title");
        el.setAttribute("title", title ? `${title} · ${original}` : original);
      }
      const shown = utc ? original : local(original) || original;
      if (n.nodeValue.trim() !== shown) n.nodeValue = shown;
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    apply(document);
    const button = document.getElementById("zone-toggle");
    if (!button) return;
    const label = () => {
      button.textContent = utc ? "UTC" : "Local";
      button.setAttribute("aria-label", utc ? "UTC times: switch to this browser's zone" : "Local times: switch to UTC");
    };
    label();
    button.addEventListener("click", () => {
      utc = !utc;
      try {
        localStorage.setItem(KEY, utc ? "utc" : "local");
      } catch (e) {
        // Not kept across pages; the switch still works here.
      }
      label();
      apply(document);
    });
  });
  return { apply };
})();

// Updraft UI behaviour, no build step:
// - live pages: while <body data-live="1">, elements with data-live-id are refreshed from the
//   same URL every 2 s; a page where nothing runs looks again every 10 s (while its tab is
//   visible), so a run started elsewhere shows up; when the fresh page has parts this one
//   lacks (a new try, a new run), it is reloaded;
// - durations of running tries (data-since="<ms since the epoch>") tick every second;
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
        window.Updraft.zone.apply(doc);
        if (liveIds(doc) !== liveIds(document)) {
          location.reload();
          return;
        }
        document.querySelectorAll("[data-live-id]").forEach((el) => {
          const fresh = doc.querySelector('[data-live-id="' + el.dataset.liveId + '"]');
          // A part the user is working in (typing, ticking) is left alone until they are done.
          // A part marked data-live-focus puts the focus back itself (the grid's cells).
          const focused = el.contains(document.activeElement) && !el.hasAttribute("data-live-focus");
          const busy = focused || el.querySelector("input[type=checkbox]:checked, details.note-edit[open]");
          if (fresh && !busy && fresh.innerHTML !== el.innerHTML) {
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

  const duration = window.Updraft.duration;

  function tick() {
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = duration(Date.now() - Number(el.dataset.since));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    schedule();
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("form[data-confirm]").forEach((f) =>
      f.addEventListener("submit", (e) => {
        if (!confirm(f.dataset.confirm)) e.preventDefault();
      })
    );
    // Buttons that ask first (a bulk form's actions); a bulk action needs a ticked run.
    document.querySelectorAll("button[data-confirm]").forEach((b) =>
      b.addEventListener("click", (e) => {
        const picks = b.form && b.form.querySelectorAll("input.bulk-pick:checked").length;
        if (b.form && b.form.id === "bulk-form" && !picks) {
          e.preventDefault();
          alert("Tick the " + (b.form.dataset.what || "runs") + " to act on first.");
        } else if (!confirm(b.dataset.confirm + (picks ? " (" + picks + " " + (b.form.dataset.what || "runs") + ")" : ""))) {
          e.preventDefault();
        }
      })
    );
    // Search boxes that hide the rows not holding their text (data-filter-rows="selector").
    document.querySelectorAll("input[data-filter-rows]").forEach((box) =>
      box.addEventListener("input", () => {
        const q = box.value.toLowerCase();
        document.querySelectorAll(box.dataset.filterRows).forEach((row) => {
          row.hidden = q !== "" && !row.textContent.toLowerCase().includes(q);
        });
      })
    );
    // A variable's Edit fills the form below with its key and value (a masked value stays
    // empty: it is replaced, never shown).
    document.querySelectorAll("button.var-edit").forEach((b) =>
      b.addEventListener("click", () => {
        document.getElementById("var-key").value = b.dataset.key;
        const value = document.getElementById("var-value");
        value.value = b.dataset.value || "";
        value.focus();
      })
    );
    const all = document.getElementById("bulk-all");
    if (all)
      all.addEventListener("change", () =>
        document.querySelectorAll("input.bulk-pick").forEach((box) => (box.checked = all.checked))
      );
    document.querySelectorAll("[data-submit-on-change]").forEach((el) =>
      el.addEventListener("change", () => el.form.requestSubmit())
    );
  });
})();

// Log viewer: each <div class="log-view"> holding a <pre class="log"> of a try's log (lines as
// written by src/operators/log.rs: "[<UTC time>] " then "[out] " or "[err] " for a command's
// output) becomes numbered lines with their time, stream and level, ANSI colours rendered and
// ::group::/::endgroup:: folded; a toolbar searches, wraps, hides times, goes full screen and
// loads earlier parts (whole lines, from data-log-raw?before=<data-log-start>). With
// data-log-stream it follows the running try over server-sent events.
(function () {
  "use strict";
  const STAMP = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)\] (?:\[(out|err)\] )?/;
  const CSI = /\x1b\[([0-9;?]*)([A-Za-z])/g;
  const ERROR = /\b(ERROR|CRITICAL|FATAL|Traceback)\b/;
  const WARN = /\b(WARN|WARNING)\b/;
  const MAX_EARLIER = 400; // a bound on "Load earlier" clicks (each at most 256 KiB)
  const stored = (key) => {
    try {
      return localStorage.getItem(key);
    } catch (e) {
      return null; // storage refused (private mode): the defaults
    }
  };

  // One SGR state: colour classes a0..a15 (themed in app.css), or 256/RGB inline colours.
  function sgr(state, params) {
    const p = params === "" ? [0] : params.split(";").map(Number);
    for (let i = 0; i < p.length; i++) {
      const n = p[i];
      if (n === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false, italic: false, under: false });
      else if (n === 1) state.bold = true;
      else if (n === 2) state.dim = true;
      else if (n === 3) state.italic = true;
      else if (n === 4) state.under = true;
      else if (n === 22) state.bold = state.dim = false;
      else if (n === 23) state.italic = false;
      else if (n === 24) state.under = false;
      else if (n >= 30 && n <= 37) state.fg = "a" + (n - 30);
      else if (n >= 90 && n <= 97) state.fg = "a" + (n - 82);
      else if (n === 39) state.fg = null;
      else if (n >= 40 && n <= 47) state.bg = "a" + (n - 40);
      else if (n >= 100 && n <= 107) state.bg = "a" + (n - 92);
      else if (n === 49) state.bg = null;
      else if ((n === 38 || n === 48) && p[i + 1] === 5) {
        state[n === 38 ? "fg" : "bg"] = "#" + xterm(p[i + 2] || 0);
        i += 2;
      } else if ((n === 38 || n === 48) && p[i + 1] === 2) {
        const hex = [p[i + 2], p[i + 3], p[i + 4]].map((v) => Math.min(255, v || 0).toString(16).padStart(2, "0")).join("");
        state[n === 38 ? "fg" : "bg"] = "#" + hex;
        i += 4;
      }
    }
  }
  function xterm(n) {
    const basic = ["000000", "cd3131", "0dbc79", "e5e510", "2472c8", "bc3fbc", "11a8cd", "e5e5e5", "666666", "f14c4c", "23d18b", "f5f543", "3b8eea", "d670d6", "29b8db", "ffffff"];
    if (n < 16) return basic[n];
    if (n >= 232) return ((n - 232) * 10 + 8).toString(16).padStart(2, "0").repeat(3);
    const c = n - 16;
    const v = (x) => (x === 0 ? 0 : x * 40 + 55).toString(16).padStart(2, "0");
    return v(Math.floor(c / 36)) + v(Math.floor(c / 6) % 6) + v(c % 6);
  }
  function styled(text, state, into) {
    if (!text) return;
    if (!state.fg && !state.bg && !state.bold && !state.dim && !state.italic && !state.under) {
      into.append(text);
      return;
    }
    const span = document.createElement("span");
    span.textContent = text;
    const cls = [];
    if (state.fg) state.fg[0] === "#" ? (span.style.color = state.fg) : cls.push("f" + state.fg);
    if (state.bg) state.bg[0] === "#" ? (span.style.backgroundColor = state.bg) : cls.push("b" + state.bg);
    if (state.bold) cls.push("bold");
    if (state.dim) cls.push("dim");
    if (state.italic) cls.push("italic");
    if (state.under) cls.push("under");
    span.className = cls.join(" ");
    into.append(span);
  }
  // The text of a line with its ANSI sequences applied to `into` (or only stripped).
  function ansi(text, into) {
    const state = {};
    let plain = "";
    let last = 0;
    CSI.lastIndex = 0;
    for (let m; (m = CSI.exec(text)); ) {
      const piece = text.slice(last, m.index);
      plain += piece;
      if (into) styled(piece, state, into);
      if (m[2] === "m") sgr(state, m[1]);
      last = CSI.lastIndex;
    }
    const rest = text.slice(last).replace(/\x1b/g, "");
    plain += rest;
    if (into) styled(rest, state, into);
    return plain;
  }

  // One line element: <div class="ln out|err|sys [lvl-error|lvl-warn] [grp|grp-end]">. A line
  // without a time stamp continues a message of several lines: it keeps `prev`, its source.
  function logLine(text, n, prev) {
    const row = document.createElement("div");
    const m = STAMP.exec(text);
    const source = m ? m[2] || "sys" : prev || "out";
    const body = m ? text.slice(m[0].length) : text;
    row.className = "ln " + source + (m ? "" : " cont");
    if (n) row.dataset.n = n;
    if (m) {
      const ts = document.createElement("span");
      ts.className = "ts";
      ts.title = m[1];
      ts.textContent = m[1].slice(11, 23);
      row.append(ts);
    }
    const msg = document.createElement("span");
    msg.className = "msg";
    const plain = ansi(body, msg);
    const group = /^::group::\s*(.*)$/.exec(plain);
    if (group) {
      row.classList.add("grp");
      msg.textContent = "";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "grp-toggle";
      button.setAttribute("aria-expanded", "false");
      button.textContent = group[1] || "group";
      msg.append(button);
    } else if (/^::endgroup::\s*$/.test(plain)) {
      row.classList.add("grp-end");
    } else if (ERROR.test(plain)) {
      row.classList.add("lvl-error");
    } else if (WARN.test(plain)) {
      row.classList.add("lvl-warn");
    }
    if (source === "err") row.title = "stderr";
    row.append(msg);
    return row;
  }

  // Hides the lines of folded groups (nested groups fold with their parent).
  function fold(lines) {
    const open = [];
    let hidden = 0; // how many of the open groups are folded
    for (const row of lines.children) {
      if (row.classList.contains("grp-end")) {
        const head = open.pop();
        if (head && head.dataset.folded === "1") hidden--;
        row.hidden = true;
        continue;
      }
      row.hidden = hidden > 0;
      row.groupHead = open[open.length - 1] || null;
      if (row.classList.contains("grp")) {
        if (!row.dataset.folded) row.dataset.folded = "1";
        const folded = row.dataset.folded === "1";
        row.querySelector(".grp-toggle").setAttribute("aria-expanded", folded ? "false" : "true");
        open.push(row);
        if (folded) hidden++;
      }
    }
  }

  function rows(text, first) {
    const frag = document.createDocumentFragment();
    const list = text.split("\n");
    if (list[list.length - 1] === "") list.pop();
    let prev = null;
    list.forEach((line, i) => {
      const row = logLine(line, first ? first + i : 0, prev);
      prev = row.classList[1];
      frag.append(row);
    });
    return frag;
  }

  function tool(tag, props, text) {
    const el = document.createElement(tag);
    Object.assign(el, props);
    if (text) el.textContent = text;
    return el;
  }

  function setUp(view) {
    const pre = view.querySelector("pre.log");
    if (!pre) return;
    const lines = tool("div", { className: "log", tabIndex: 0 });
    lines.setAttribute("role", "log");
    lines.setAttribute("aria-label", "Log");
    let first = Number(view.dataset.firstLine) || 0;
    let start = Number(view.dataset.logStart) || 0;
    let next = 0; // the number of the next streamed line
    lines.append(rows(pre.textContent, first));
    next = first ? first + lines.children.length : 0;
    if (!first) lines.classList.add("no-numbers");
    pre.replaceWith(lines);
    const cut = view.querySelector(".log-cut");
    if (cut) cut.remove();

    const bar = tool("div", { className: "log-tools" });
    const earlier = tool("button", { type: "button", className: "secondary log-earlier" }, "Load earlier");
    earlier.hidden = start === 0;
    const search = tool("input", { type: "search", className: "log-search", placeholder: "Search the log" });
    search.setAttribute("aria-label", "Search the log");
    const hits = tool("span", { className: "log-hits muted" });
    hits.setAttribute("aria-live", "polite");
    const prev = tool("button", { type: "button", className: "secondary" }, "↑");
    prev.setAttribute("aria-label", "Previous match");
    const nextHit = tool("button", { type: "button", className: "secondary" }, "↓");
    nextHit.setAttribute("aria-label", "Next match");
    const check = (cls, label, on) => {
      const box = tool("input", { type: "checkbox", className: cls, checked: on });
      const l = tool("label", { className: "log-opt" });
      l.append(box, " " + label);
      return [l, box];
    };
    const [wrapLabel, wrap] = check("log-wrap", "Wrap", stored("updraft-log-wrap") !== "0");
    const [timesLabel, times] = check("log-times", "Times", stored("updraft-log-times") !== "0");
    const full = tool("button", { type: "button", className: "secondary log-full" }, "Full screen");
    bar.append(earlier, search, prev, nextHit, hits, wrapLabel, timesLabel, full);
    view.prepend(bar);

    const apply = () => {
      lines.classList.toggle("wrap", wrap.checked);
      lines.classList.toggle("no-times", !times.checked);
    };
    apply();
    const remember = (key, box) =>
      box.addEventListener("change", () => {
        apply();
        try {
          localStorage.setItem(key, box.checked ? "1" : "0");
        } catch (e) {
          // Not kept; the option still applies here.
        }
      });
    remember("updraft-log-wrap", wrap);
    remember("updraft-log-times", times);
    full.addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (view.requestFullscreen) view.requestFullscreen();
    });
    lines.addEventListener("click", (e) => {
      const button = e.target.closest(".grp-toggle");
      if (!button) return;
      const row = button.closest(".ln");
      row.dataset.folded = row.dataset.folded === "1" ? "0" : "1";
      fold(lines);
    });

    // Search: every line holding the text is marked; Enter, ↓ and ↑ go from match to match,
    // unfolding the groups around it.
    let found = [];
    let at = -1;
    const show = () => {
      lines.querySelectorAll(".ln.current").forEach((r) => r.classList.remove("current"));
      if (at < 0 || !found[at]) return;
      const row = found[at];
      let changed = false;
      for (let g = row.groupHead; g; g = g.groupHead) {
        if (g.dataset.folded === "1") {
          g.dataset.folded = "0";
          changed = true;
        }
      }
      if (changed) fold(lines);
      row.classList.add("current");
      row.scrollIntoView({ block: "center" });
      hits.textContent = at + 1 + " of " + found.length;
    };
    const find = () => {
      const q = search.value.toLowerCase();
      found = [];
      for (const row of lines.children) {
        const hit = q !== "" && row.textContent.toLowerCase().includes(q);
        row.classList.toggle("hit", hit);
        if (hit) found.push(row);
      }
      at = found.length ? found.length - 1 : -1;
      hits.textContent = q === "" ? "" : found.length ? "" : "no match";
      show();
    };
    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(find, 200);
    });
    const step = (d) => {
      if (!found.length) return;
      at = (at + d + found.length) % found.length;
      show();
    };
    search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        step(e.shiftKey ? -1 : 1);
      }
    });
    prev.addEventListener("click", () => step(-1));
    nextHit.addEventListener("click", () => step(1));

    let loads = 0;
    earlier.addEventListener("click", () => {
      if (loads++ > MAX_EARLIER || start === 0) return;
      earlier.disabled = true;
      const url = new URL(view.dataset.logRaw, location.href);
      url.searchParams.set("before", String(start));
      fetch(url, { credentials: "same-origin" })
        .then((r) => (r.ok ? r : Promise.reject(r.status)))
        .then((r) => Promise.all([r.text(), r.headers.get("X-Log-Start"), r.headers.get("X-Log-First-Line")]))
        .then(([text, s, n]) => {
          const keep = lines.scrollHeight - lines.scrollTop;
          start = Number(s) || 0;
          first = Number(n) || 0;
          view.dataset.logStart = String(start);
          if (!first) lines.classList.add("no-numbers");
          lines.prepend(rows(text, first));
          fold(lines);
          lines.scrollTop = lines.scrollHeight - keep;
          earlier.hidden = start === 0;
          if (search.value) find();
        })
        .catch(() => (earlier.textContent = "Load earlier (failed: try again)"))
        .finally(() => (earlier.disabled = false));
    });

    fold(lines);
    lines.scrollTop = lines.scrollHeight; // a log opens at its end

    if (view.dataset.logStream) {
      const src = new EventSource(view.dataset.logStream);
      let pending = [];
      const flush = () => {
        const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 20;
        const frag = document.createDocumentFragment();
        pending.forEach((line) => {
          const last = lines.lastElementChild;
          frag.append(logLine(line, next ? next++ : 0, frag.lastChild ? frag.lastChild.classList[1] : last && last.classList[1]));
        });
        pending = [];
        lines.append(frag);
        fold(lines);
        if (atBottom) lines.scrollTop = lines.scrollHeight;
      };
      src.onmessage = (e) => {
        if (pending.length === 0) requestAnimationFrame(flush);
        pending.push(e.data);
      };
      src.addEventListener("end", () => src.close());
      src.onerror = () => src.close();
    }
  }

  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll(".log-view").forEach(setUp));
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

// Task groups in the grid: a group row's toggle folds the rows inside it (data-in lists the
// groups holding a row). What is folded is remembered per DAG in localStorage and applied
// again after a live refresh redraws the grid.
(function () {
  function key() {
    return "updraft.grid.folded:" + location.pathname;
  }
  function folded() {
    try {
      return new Set(JSON.parse(localStorage.getItem(key()) || "[]"));
    } catch (e) {
      return new Set();
    }
  }
  function save(set) {
    try {
      localStorage.setItem(key(), JSON.stringify(Array.from(set)));
    } catch (e) {
      /* private mode: folding lasts for the page */
    }
  }
  function apply(grid, set) {
    grid.querySelectorAll("tr[data-in]").forEach((row) => {
      row.hidden = row.dataset.in.split(" ").some((g) => set.has(g));
    });
    grid.querySelectorAll("button[data-group-toggle]").forEach((b) => {
      b.setAttribute("aria-expanded", set.has(b.dataset.groupToggle) ? "false" : "true");
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    const wrap = document.querySelector(".grid-wrap");
    if (!wrap || !wrap.querySelector("button[data-group-toggle]")) return;
    let set = folded();
    const grid = () => wrap.querySelector("table.grid");
    apply(grid(), set);
    wrap.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-group-toggle]");
      if (!b) return;
      const g = b.dataset.groupToggle;
      if (set.has(g)) set.delete(g);
      else set.add(g);
      save(set);
      apply(grid(), set);
    });
    wrap.addEventListener("live:updated", () => apply(grid(), set));
    document.querySelectorAll("button[data-groups-all]").forEach((b) =>
      b.addEventListener("click", () => {
        set = new Set();
        if (b.dataset.groupsAll === "collapse")
          grid().querySelectorAll("button[data-group-toggle]").forEach((t) => set.add(t.dataset.groupToggle));
        save(set);
        apply(grid(), set);
      })
    );
  });
})();

// Gantt zoom: drag across the tracks to show only that time range (bars and the axis are
// redrawn from the positions the server wrote, kept in data attributes); "Whole run" or
// Escape goes back. The range is kept across live refreshes, which redraw the gantt.
(function () {
  let view = [0, 100];
  let drag = null;
  const panel = () => document.querySelector(".gantt[data-span-ms]");
  const zoomed = () => view[0] > 0 || view[1] < 100;
  const fmt = window.Updraft.duration;
  function apply() {
    const p = panel();
    if (!p) return;
    const [a, b] = view;
    const k = 100 / (b - a);
    const total = Number(p.dataset.spanMs) || 1;
    p.querySelectorAll(".bar").forEach((bar) => {
      if (bar.dataset.left === undefined) {
        bar.dataset.left = parseFloat(bar.style.left) || 0;
        bar.dataset.width = parseFloat(bar.style.width) || 0;
      }
      const l = Number(bar.dataset.left), w = Number(bar.dataset.width);
      const from = Math.max(l, a), to = Math.min(l + w, b);
      bar.hidden = to < from;
      bar.style.left = (from - a) * k + "%";
      bar.style.width = Math.max(to - from, 0) * k + "%";
    });
    const axis = p.querySelector(".ticks");
    if (axis) {
      const t0 = (a / 100) * total, range = ((b - a) / 100) * total;
      let step = 1;
      find: for (let scale = 1; scale <= 1e12; scale *= 10) {
        for (const m of [1, 2, 5]) {
          step = m * scale;
          if (range / step < 8) break find;
        }
      }
      axis.textContent = "";
      for (let at = Math.ceil(t0 / step) * step; at <= t0 + range && axis.children.length < 20; at += step) {
        const tick = document.createElement("span");
        tick.className = "tick";
        tick.style.left = ((at - t0) / range) * 100 + "%";
        tick.textContent = at === 0 ? "0" : "+" + fmt(at);
        axis.appendChild(tick);
      }
    }
    const tools = document.querySelector(".gantt-tools");
    if (tools) {
      tools.hidden = !zoomed();
      document.getElementById("gantt-range").textContent = zoomed()
        ? "Showing +" + fmt((a / 100) * total) + " to +" + fmt((b / 100) * total) + " of " + fmt(total)
        : "";
    }
  }
  // Where a pointer is, in % of the whole run.
  function at(e, track) {
    const r = track.getBoundingClientRect();
    const x = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
    return view[0] + x * (view[1] - view[0]);
  }
  function whole() {
    view = [0, 100];
    apply();
  }
  document.addEventListener("pointerdown", (e) => {
    const track = e.target.closest && e.target.closest(".gantt[data-span-ms] .track");
    if (!track || e.button !== 0) return;
    const pick = document.createElement("span");
    pick.className = "pick";
    track.appendChild(pick);
    drag = { track, from: at(e, track), x0: e.clientX, pick };
    panel().classList.add("zooming");
  });
  document.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const r = drag.track.getBoundingClientRect();
    const x1 = Math.min(drag.x0, e.clientX) - r.left, x2 = Math.max(drag.x0, e.clientX) - r.left;
    drag.pick.style.left = Math.max(x1, 0) + "px";
    drag.pick.style.width = Math.max(Math.min(x2, r.width) - Math.max(x1, 0), 0) + "px";
  });
  function end(e) {
    if (!drag) return;
    const to = at(e, drag.track), moved = Math.abs(e.clientX - drag.x0);
    drag.pick.remove();
    const p = panel();
    if (p) p.classList.remove("zooming");
    const [a, b] = [Math.min(drag.from, to), Math.max(drag.from, to)];
    drag = null;
    // A click (no drag) still follows a row's link; a drag of a few px zooms.
    if (e.type === "pointerup" && moved > 4 && b - a > 0.01) {
      view = [a, b];
      apply();
      swallowClick = true;
      setTimeout(() => (swallowClick = false), 0);
    }
  }
  // The click that ends a drag neither follows a link nor opens a mapped row.
  let swallowClick = false;
  document.addEventListener("click", (e) => {
    if (swallowClick) {
      e.preventDefault();
      e.stopPropagation();
      swallowClick = false;
    }
  }, true);
  document.addEventListener("pointerup", end);
  document.addEventListener("pointercancel", end);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && zoomed()) whole();
  });
  document.addEventListener("click", (e) => {
    if (e.target.id === "gantt-reset") whole();
  });
  // live:updated does not bubble; a capturing listener still hears it.
  document.addEventListener("live:updated", () => { if (zoomed()) apply(); }, true);
})();

// Grid: one tab stop, and the arrow keys move between cells (Home/End to the row's ends,
// Ctrl+Home/End to the corners). A cell carries only its state and numbers; its tooltip and
// link are built here from the row's task id and the column's run id. Clicking a cell, a
// run's bar or a task's name (or Enter on it) opens the details beside the grid: state, tries,
// the duration of that task (or of the runs) across the runs shown, and links; Escape closes
// them. A modified click (Ctrl, Shift, middle) on a bar or a name still follows its link.
(function () {
  "use strict";
  const fmt = window.Updraft.duration;
  let focusKey = null; // [row's task id or "" for the run bars, column index] of the roving cell
  let focusInside = false;
  let shown = null; // what the panel shows: {kind: "ti" | "run" | "task", task, col}
  let triesCache = { key: "", node: null };

  const table = () => document.getElementById("grid");
  const aside = () => document.getElementById("grid-details");
  const enc = encodeURIComponent;

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    Object.entries(props || {}).forEach(([k, v]) => {
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    });
    children.forEach((c) => c && e.append(c));
    return e;
  }
  const svg = (tag, attrs) => {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, v));
    return e;
  };

  // The rows keys move through: the run bars' row, then the task rows not folded away.
  function rows(t) {
    return [t.tHead.rows[0], ...Array.from(t.tBodies[0].rows).filter((r) => !r.hidden)];
  }
  const keyOf = (cell) => [cell.parentElement.dataset.taskId || "", cell.cellIndex];
  function cellAt(t, key) {
    const row = key[0] ? t.querySelector('tbody tr[data-task-id="' + CSS.escape(key[0]) + '"]') : t.tHead.rows[0];
    return row && !row.hidden ? row.cells[Math.min(key[1], row.cells.length - 1)] : null;
  }
  // The element that takes the focus in a cell: its link or button, else the cell itself.
  const target = (cell) => cell.querySelector("a, button") || cell;

  function runs(t) {
    return Array.from(t.tHead.rows[0].querySelectorAll("th.runcol a"), (a) => ({
      id: a.dataset.runId,
      href: a.getAttribute("href"),
      state: a.dataset.state,
      date: a.dataset.date,
      ms: Number(a.dataset.d),
    }));
  }
  const stateOf = (td) => (/(?:^| )s-([a-z_]+)/.exec(td.className) || [])[1] || null;

  // What a body cell stands for; null for the task-name column.
  function info(t, td) {
    if (td.cellIndex === 0) return null;
    const row = td.parentElement;
    const run = runs(t)[td.cellIndex - 1];
    const d = td.dataset;
    const task = d.task || row.dataset.taskId;
    const m = d.m !== undefined ? Number(d.m) : -1;
    const dag = t.dataset.dagUrl;
    const href = dag + "/runs/" + enc(run.id) + "/tasks/" + enc(task) + (m >= 0 ? "?map_index=" + m : "");
    const api = "/api/v1" + dag + "/dagRuns/" + enc(run.id) + "/taskInstances/" + enc(task) + (m >= 0 ? "?map_index=" + m : "");
    return {
      row: row.dataset.taskId,
      group: row.classList.contains("group-row"),
      task,
      run,
      state: stateOf(td),
      ms: d.d !== undefined ? Number(d.d) : null,
      tryNumber: Number(d.t || 1),
      mapIndex: m,
      count: Number(d.n || 1),
      counts: d.k || "",
      href,
      api,
    };
  }

  function title(c) {
    if (!c.state) return c.row + " · " + c.run.id + " · no instance";
    if (c.group) return "group " + c.row + " · " + c.run.id + " · " + c.counts;
    if (c.count > 1) return c.task + " · " + c.run.id + " · " + c.count + " mapped: " + c.counts;
    return c.task + " · " + c.run.id + " · " + c.state + " · try " + c.tryNumber + " · " + (c.ms === null ? "not started" : fmt(c.ms));
  }

  // One tab stop: the roving cell's target has tabindex 0, every other link, button and cell -1.
  function setup(t) {
    t.querySelectorAll("a, button").forEach((e) => (e.tabIndex = -1));
    const rs = rows(t);
    let cell = focusKey && cellAt(t, focusKey);
    if (!cell) cell = rs.length > 1 ? rs[1].cells[rs[1].cells.length - 1] : rs[0].cells[rs[0].cells.length - 1];
    if (cell) move(t, cell, false);
  }

  function move(t, cell, focus) {
    t.querySelectorAll('[tabindex="0"]').forEach((e) => (e.tabIndex = -1));
    const to = target(cell);
    to.tabIndex = 0;
    if (to === cell && cell.tagName === "TD" && cell.cellIndex > 0) cell.setAttribute("aria-label", title(info(t, cell)));
    focusKey = keyOf(cell);
    if (focus) to.focus();
  }

  function key(e) {
    const t = table();
    const cell = e.target.closest && e.target.closest("#grid td, #grid th");
    if (!t || !cell || cell.parentElement.classList.contains("run-labels")) return;
    const rs = rows(t);
    let r = rs.indexOf(cell.parentElement);
    let c = cell.cellIndex;
    const last = rs[0].cells.length - 1;
    switch (e.key) {
      case "ArrowLeft": c -= 1; break;
      case "ArrowRight": c += 1; break;
      case "ArrowUp": r -= 1; break;
      case "ArrowDown": r += 1; break;
      case "Home": c = 0; if (e.ctrlKey) r = 0; break;
      case "End": c = last; if (e.ctrlKey) r = rs.length - 1; break;
      case "Enter":
      case " ":
        if (target(cell) === cell) {
          e.preventDefault();
          open(t, cell);
        }
        return;
      default:
        return;
    }
    e.preventDefault();
    r = Math.max(0, Math.min(rs.length - 1, r));
    c = Math.max(0, Math.min(last, c));
    if (rs[r] && rs[r].cells[c]) move(t, rs[r].cells[c], true);
  }

  function click(e) {
    const t = table();
    const cell = e.target.closest && e.target.closest("#grid td, #grid th");
    if (!t || !cell || cell.parentElement.classList.contains("run-labels")) return;
    const link = e.target.closest("a");
    if (link && (e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.button !== 0)) return;
    move(t, cell, false);
    if (e.target.closest("button")) return; // a group's toggle folds (see above)
    if (link) e.preventDefault();
    open(t, cell);
  }

  function open(t, cell) {
    const row = cell.parentElement;
    if (row.parentElement === t.tHead) {
      if (cell.cellIndex === 0) return;
      shown = { kind: "run", col: cell.cellIndex };
    } else if (cell.cellIndex === 0) {
      shown = { kind: "task", task: row.dataset.taskId };
    } else {
      shown = { kind: "ti", task: row.dataset.taskId, col: cell.cellIndex };
    }
    draw(true);
  }

  function close() {
    shown = null;
    const a = aside();
    a.hidden = true;
    a.replaceChildren();
    const t = table();
    const cell = t && focusKey && cellAt(t, focusKey);
    if (cell) target(cell).focus();
  }

  // The durations of one row (a task) or of the runs, across the runs shown, as bars; the
  // current column outlined. Clicking a bar shows that run's cell.
  function chart(values, current, caption, onPick) {
    const W = 300, H = 70, top = 14;
    const max = Math.max(1, ...values.map((v) => v.ms || 0));
    const step = Math.min(24, W / Math.max(1, values.length));
    const s = svg("svg", { viewBox: "0 0 " + W + " " + (H + 2), class: "duration-chart", role: "img", "aria-label": caption + ", longest " + fmt(max) });
    const label = svg("text", { x: 0, y: 10, class: "chart-label" });
    label.textContent = "longest " + fmt(max);
    s.append(label);
    values.forEach((v, i) => {
      if (v.ms === null || v.ms === undefined || !v.state) return;
      const h = Math.max(2, (v.ms / max) * (H - top));
      const bar = svg("rect", { x: (i * step + 0.5).toFixed(1), y: (H - h).toFixed(1), width: Math.max(1, step - 1).toFixed(1), height: h.toFixed(1) });
      bar.style.fill = "var(--s-" + v.state + ")";
      if (i + 1 === current) bar.setAttribute("class", "current");
      const tip = svg("title", {});
      tip.textContent = v.label + " · " + v.state + " · " + fmt(v.ms);
      bar.append(tip);
      if (onPick) bar.addEventListener("click", () => onPick(i + 1));
      s.append(bar);
    });
    s.append(svg("line", { x1: 0, x2: W, y1: H + 0.5, y2: H + 0.5, class: "chart-base" }));
    return el("figure", { class: "chart" }, s, el("figcaption", { class: "muted", text: caption + " (oldest left)" }));
  }

  function counted(cells) {
    const n = {};
    cells.forEach((s) => s && (n[s] = (n[s] || 0) + 1));
    return Object.entries(n).sort((a, b) => b[1] - a[1]).map(([s, k]) => k + " " + s).join(", ") || "none";
  }

  function kv(pairs) {
    const dl = el("dl", { class: "kv" });
    pairs.forEach(([k, v]) => v !== null && v !== undefined && dl.append(el("dt", { text: k }), el("dd", {}, typeof v === "string" ? document.createTextNode(v) : v)));
    return dl;
  }
  const link = (href, text) => el("a", { href, text });
  const badge = (state) => el("span", { class: "state s-" + state, text: state });

  function rowCells(t, taskId) {
    const row = t.querySelector('tbody tr[data-task-id="' + CSS.escape(taskId) + '"]');
    return row ? Array.from(row.cells).slice(1) : [];
  }

  function taskChart(t, taskId, col) {
    const rs = runs(t);
    const values = rowCells(t, taskId).map((td, i) => ({ ms: td.dataset.d !== undefined ? Number(td.dataset.d) : null, state: stateOf(td), label: rs[i].id }));
    const pick = (c) => {
      shown = { kind: "ti", task: taskId, col: c };
      const cell = cellAt(t, [taskId, c]);
      if (cell) move(t, cell, false);
      draw(true);
    };
    return chart(values, col, "Duration of " + taskId + " per run", pick);
  }

  function tries(c) {
    const key = c.api + "|" + c.state + "|" + c.tryNumber;
    if (triesCache.key === key && triesCache.node) return triesCache.node;
    const list = el("ol", { class: "tries" }, el("li", { class: "muted", text: "Loading tries…" }));
    triesCache = { key, node: list };
    fetch(c.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("the server answered " + r.status))))
      .then((ti) => {
        if (triesCache.node !== list) return; // a newer selection
        list.replaceChildren();
        if (!ti.tries || !ti.tries.length) list.append(el("li", { class: "muted", text: "No try has started." }));
        ti.tries.forEach((tr) => {
          const when = tr.start_date ? tr.start_date.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC").replace("+00:00", " UTC") : "not started";
          const item = el("li", {}, link(c.href + "#try-" + tr.try_number, "Try " + tr.try_number), " ", badge(tr.state), " " + when + (tr.duration !== null ? " · " + fmt(tr.duration * 1000) : ""));
          if (tr.hostname) item.append(el("span", { class: "muted", text: " · " + tr.hostname }));
          if (tr.error) item.append(el("div", { class: "try-error", text: tr.error }));
          list.append(item);
        });
      })
      .catch((err) => {
        if (triesCache.node !== list) return;
        list.replaceChildren(el("li", { class: "muted", text: "Could not load the tries: " + err.message }));
        triesCache = { key: "", node: null };
      });
    return list;
  }

  function draw(scroll) {
    const t = table();
    const a = aside();
    if (!t || !a || !shown) return;
    const head = (text, sub) => {
      const x = el("button", { type: "button", class: "secondary close", "aria-label": "Close the details", title: "Close (Escape)", text: "×" });
      x.addEventListener("click", close);
      return el("header", {}, el("div", {}, el("h2", { text }), sub ? el("p", { class: "muted", text: sub }) : null), x);
    };
    const parts = [];
    const rs = runs(t);
    if (shown.kind === "ti") {
      const cell = cellAt(t, [shown.task, shown.col]);
      if (!cell) return close();
      const c = info(t, cell);
      parts.push(head(c.group ? "group " + c.row : c.task, c.run.id));
      if (!c.state) {
        parts.push(el("p", { class: "muted", text: "No instance of " + c.row + " in this run." }));
      } else {
        parts.push(kv([
          ["State", badge(c.state)],
          ["Run", link(c.run.href, c.run.id)],
          ["Logical date", c.run.date],
          ["Try", c.group ? null : String(c.tryNumber)],
          ["Duration", c.ms === null ? "not started" : fmt(c.ms)],
          [c.group ? "Instances" : "Mapped", c.group || c.count > 1 ? (c.group ? "" : c.count + ": ") + c.counts : null],
          [c.group ? "Shown" : "Instance", c.group || c.mapIndex >= 0 ? c.task + (c.mapIndex >= 0 ? " [" + c.mapIndex + "]" : "") : null],
        ]));
        parts.push(el("p", { class: "links" }, link(c.href, c.group || c.count > 1 ? "Open the instance shown" : "Open the task instance"), " · ", link(c.run.href, "Open the run")));
        if (!c.group) parts.push(taskChart(t, c.row, shown.col));
        parts.push(el("h3", { text: "Tries" }), tries(c));
      }
    } else if (shown.kind === "run") {
      const run = rs[shown.col - 1];
      if (!run) return close();
      const states = Array.from(t.tBodies[0].rows).filter((r) => !r.classList.contains("group-row")).map((r) => r.cells[shown.col] && stateOf(r.cells[shown.col]));
      parts.push(head(run.id, "Run"));
      parts.push(kv([["State", badge(run.state)], ["Logical date", run.date], ["Duration", fmt(run.ms)], ["Tasks", counted(states)]]));
      parts.push(el("p", { class: "links" }, link(run.href, "Open the run")));
      const pick = (c) => {
        shown = { kind: "run", col: c };
        const cell = t.tHead.rows[0].cells[c];
        if (cell) move(t, cell, false);
        draw(true);
      };
      parts.push(chart(rs.map((r) => ({ ms: r.ms, state: r.state, label: r.id })), shown.col, "Duration of each run", pick));
    } else {
      const row = t.querySelector('tbody tr[data-task-id="' + CSS.escape(shown.task) + '"]');
      if (!row) return close();
      const group = row.classList.contains("group-row");
      const states = rowCells(t, shown.task).map(stateOf);
      parts.push(head(shown.task, group ? "Task group" : row.cells[0].dataset.kind + " task"));
      if (group) {
        const inside = t.querySelectorAll("tbody tr[data-in]:not(.group-row)");
        const n = Array.from(inside).filter((r) => r.dataset.in.split(" ").includes(shown.task)).length;
        parts.push(kv([["Tasks inside", String(n)], ["Runs shown", counted(states)]]));
      } else {
        const across = row.querySelector("a.task-link");
        parts.push(kv([["Type", row.cells[0].dataset.kind], ["Runs shown", counted(states)]]));
        if (across) parts.push(el("p", { class: "links" }, link(across.getAttribute("href"), "Every instance of this task")));
        parts.push(taskChart(t, shown.task, 0));
      }
    }
    a.replaceChildren(...parts);
    a.hidden = false;
    if (scroll && a.getBoundingClientRect().top > window.innerHeight) a.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const wrap = document.querySelector(".grid-wrap");
    const t = table();
    if (!wrap || !t || !aside()) return;
    wrap.setAttribute("data-live-focus", "");
    setup(t);
    wrap.addEventListener("keydown", key);
    wrap.addEventListener("click", click);
    wrap.addEventListener("mouseover", (e) => {
      const td = e.target.closest && e.target.closest("#grid tbody td");
      if (td && td.cellIndex > 0 && !td.title) td.title = title(info(table(), td));
    });
    wrap.addEventListener("focusin", () => (focusInside = true));
    wrap.addEventListener("focusout", (e) => {
      if (e.relatedTarget && !wrap.contains(e.relatedTarget)) focusInside = false;
    });
    wrap.addEventListener("live:updated", () => {
      const fresh = table();
      if (!fresh) return;
      const refocus = focusInside && (!document.activeElement || document.activeElement === document.body);
      setup(fresh);
      if (refocus) {
        const cell = cellAt(fresh, focusKey);
        if (cell) target(cell).focus();
      }
      draw(false);
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && shown) close();
    });
  });
})();
