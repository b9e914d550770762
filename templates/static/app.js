// Updraft UI behaviour, no build step:
// - live pages: while <body data-live="1">, elements with data-live-id are refreshed from the
//   same URL every 2 s, until the page says nothing is running any more;
// - log tails: <pre data-log-stream="URL"> follows a try's log over server-sent events;
// - forms with data-confirm ask first; toggles submit their form.
(function () {
  "use strict";
  const MAX_REFRESHES = 1800; // one hour at 2 s, then a reload is up to the user
  let refreshes = 0;

  function refresh() {
    if (document.body.dataset.live !== "1" || refreshes++ > MAX_REFRESHES) return;
    fetch(location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => {
        const doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-id]").forEach((el) => {
          const fresh = doc.querySelector('[data-live-id="' + el.dataset.liveId + '"]');
          if (fresh) el.innerHTML = fresh.innerHTML;
        });
        document.body.dataset.live = doc.body.dataset.live || "0";
      })
      .catch(() => {})
      .finally(() => setTimeout(refresh, 2000));
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
    if (document.body.dataset.live === "1") setTimeout(refresh, 2000);
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
