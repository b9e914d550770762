// End-to-end scenario in headless Chromium (driven by tests/browser.rs).
// Env: BASE_URL, ADMIN_PASSWORD, SCREENSHOT_DIR, NODE_PATH (playwright-core).
// Every wait is bounded; the first failed expectation throws, takes a screenshot and exits 1.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const BASE = process.env.BASE_URL;
const SHOTS = process.env.SCREENSHOT_DIR;
const DAG_ID = "e2e_hello";

const GOOD_DAG = `dag_id: ${DAG_ID}
description: Written in the browser editor
owner: arthur
tags: [e2e]
params:
  greeting: hello
tasks:
  say:
    type: bash
    command: echo "{{ params.greeting }} from the browser test"
  done:
    type: bash
    command: echo finished
    depends_on: [say]
  slow:
    type: bash
    command: sleep 6; echo slow-done
`;
// The same file with a dependency on a task that does not exist (line 14).
const BAD_DAG = GOOD_DAG.replace("depends_on: [say]", "depends_on: [sya]");

let step = "start";
function expect(cond, what) {
  if (!cond) throw new Error(`${step}: expected ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// axe-core's critical and serious findings on the open page, kept for the end of the run.
// Evaluated through the DevTools protocol: the pages' Content-Security-Policy stays on.
const AXE = require("fs").readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const accessibility = [];
async function audit(page, name) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "critical" || v.impact === "serious")
      .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}x: ${v.nodes.slice(0, 6).map((n) => n.target.join(" ") + " [" + (n.any[0] ? n.any[0].message : "") + "]").join("; ")})`);
  });
  for (const f of found) accessibility.push(`${name}: ${f}`);
}

// Replaces the editor's text as a paste would (CodeMirror's content is contenteditable).
async function setEditor(page, text) {
  await page.click("#editor-form .cm-content");
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(text);
}

async function login(page, user, password) {
  await page.goto(`${BASE}/login`);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
  expect(page.url().endsWith("/dags"), `${user} lands on /dags after login, got ${page.url()}`);
}

async function logout(page) {
  // Error pages have no navigation bar: go back to a page that has one.
  if (!(await page.locator("header form[action='/logout'] button").count())) {
    await page.goto(`${BASE}/dags`);
  }
  await page.click("header form[action='/logout'] button");
  await page.waitForURL(/\/login/);
}

// Posts a form directly with the session's cookie and a valid CSRF token, as a hand-made
// request would: the server must refuse it by role, not because a button was hidden.
async function directPost(page, url, form) {
  const csrf = await page.evaluate(() => {
    const el = document.querySelector("input[name=csrf]");
    return el ? el.value : "";
  });
  return page.request.post(`${BASE}${url}`, { form: { csrf, ...form }, maxRedirects: 0 });
}

async function createUser(page, name, role) {
  await page.goto(`${BASE}/admin/users`);
  const form = page.locator("form#user-create");
  await form.locator("input[name=username]").fill(name);
  await form.locator("input[name=password]").fill(`${name}-password-1`);
  await form.locator(`input[name=role][value=${role}]`).check();
  await Promise.all([page.waitForLoadState("load"), form.locator("button[type=submit]").click()]);
  const text = await page.textContent("body");
  expect(text.includes(name), `the user list to show ${name}`);
}

async function waitFor(what, limitMs, fn) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > limitMs) throw new Error(`${step}: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  try {
    step = "admin creates users";
    await login(page, "admin", process.env.ADMIN_PASSWORD);
    await createUser(page, "olivia", "operator");
    await createUser(page, "arthur", "author");
    await createUser(page, "victor", "viewer");
    await shot(page, "users");
    await audit(page, "admin users");
    await logout(page);

    step = "author writes a DAG";
    await login(page, "arthur", "arthur-password-1");
    expect(!(await page.locator("a.button", { hasText: "Trigger" }).count()), "no trigger button for an author");
    await page.goto(`${BASE}/editor/new`);
    await page.fill("#editor-file", `${DAG_ID}.yaml`);
    expect((await page.locator("#editor-form .cm-editor").count()) === 1, "a code editor replaces the text area");
    expect((await page.locator("#editor-form .cm-lineNumbers").count()) === 1, "the editor numbers its lines");
    await setEditor(page, BAD_DAG);
    // Validation as you type (debounced): no click needed.
    await page.waitForSelector("#editor-errors li.error", { timeout: 5000 });
    expect((await page.locator("#editor-form .cm-lintRange-error, #editor-form .cm-lint-marker-error").count()) > 0, "the error is marked in the editor");
    expect((await page.inputValue("#editor-content")) === BAD_DAG, "the form posts what the editor shows");
    await page.click("#editor-validate");
    await page.waitForSelector("#editor-errors li.error");
    const errors = await page.textContent("#editor-errors");
    expect(/14/.test(errors) && errors.includes("sya"), `a validation error naming line 14 and 'sya', got: ${errors}`);
    await Promise.all([page.waitForLoadState("load"), page.click("#editor-save")]);
    const refused = await page.textContent("#editor-errors");
    expect(refused.includes("sya"), "saving the broken file shows the error");
    await setEditor(page, GOOD_DAG);
    await page.click("#editor-validate");
    await waitFor("validation to pass", 5000, async () =>
      (await page.locator("#editor-errors li.ok").count()) > 0 &&
      (await page.locator("#editor-errors li.error").count()) === 0);
    await shot(page, "editor");
    await audit(page, "editor");
    await Promise.all([page.waitForLoadState("load"), page.click("#editor-save")]);
    expect((await page.locator(".banner.error").count()) === 0, `the save to succeed, at ${page.url()}`);
    // Editing the saved file: the change is shown as a diff before it is saved.
    await page.goto(`${BASE}/editor/edit?file=${DAG_ID}.yaml`);
    await page.waitForSelector("#editor-form .cm-editor");
    await setEditor(page, GOOD_DAG.replace("Written in the browser editor", "Edited in the browser editor"));
    await page.click("#editor-save");
    await page.waitForSelector("dialog#editor-diff[open]");
    const diff = await page.textContent("dialog#editor-diff");
    expect(diff.includes("Edited in the browser editor") && diff.includes("Written in the browser editor"), `the diff shows the old and new line, got ${diff}`);
    await shot(page, "editor_diff");
    await Promise.all([page.waitForLoadState("load"), page.click("#editor-diff-save")]);
    expect((await page.locator(".banner.error").count()) === 0, `the edit to be saved, at ${page.url()}`);

    step = "author may not trigger";
    let r = await directPost(page, `/dags/${DAG_ID}/trigger`, {});
    expect(r.status() === 403, `a direct trigger post by the author to get 403, got ${r.status()}`);
    const resp = await page.goto(`${BASE}/dags/${DAG_ID}/trigger`);
    expect(resp.status() === 403, `the trigger form to be refused to the author, got ${resp.status()}`);
    await logout(page);

    step = "operator triggers with a param";
    await login(page, "olivia", "olivia-password-1");
    await waitFor("the scheduler to load the new DAG", 20000, async () => {
      await page.goto(`${BASE}/dags`);
      return (await page.locator(`tr[data-dag-id=${DAG_ID}]`).count()) > 0;
    });
    await shot(page, "dags");
    await audit(page, "DAG list");
    const editor = await page.goto(`${BASE}/editor`);
    expect(editor.status() === 403, `the editor to be refused to the operator, got ${editor.status()}`);
    await page.goto(`${BASE}/dags`);
    r = await directPost(page, "/editor/save", { file: "evil.yaml", content: GOOD_DAG });
    expect(r.status() === 403, `a direct editor save by the operator to get 403, got ${r.status()}`);
    step = "operator unpauses the author's new DAG";
    await page.goto(`${BASE}/dags/${DAG_ID}`);
    const paused = page.locator(".dag-head .state", { hasText: "paused" });
    expect((await paused.count()) === 1, "a DAG created in the editor starts paused");
    await Promise.all([page.waitForLoadState("load"), page.click(".dag-head button.toggle")]);
    expect((await paused.count()) === 0, "the operator's toggle unpauses it");
    {
      // The list's toggles share one form (its token and return path), each its own DAG.
      await page.goto(`${BASE}/dags?q=${DAG_ID}`);
      const toggle = page.locator(`tr[data-dag-id=${DAG_ID}] button.toggle`);
      await Promise.all([page.waitForLoadState("load"), toggle.click()]);
      expect(page.url().includes(`q=${DAG_ID}`), `back on the same list, got ${page.url()}`);
      expect((await toggle.getAttribute("aria-pressed")) === "false", "the list's toggle pauses the DAG");
      await Promise.all([page.waitForLoadState("load"), toggle.click()]);
      expect((await toggle.getAttribute("aria-pressed")) === "true", "and unpauses it");
    }
    await page.goto(`${BASE}/dags/${DAG_ID}/trigger`);
    await page.fill("input[name='param.greeting']", "bonjour");
    expect((await page.getAttribute("#logical_date", "type")) === "datetime-local", "a date-time picker for the logical date");
    await page.fill("#logical_date", "2026-01-31T10:30");
    await Promise.all([page.waitForLoadState("load"), page.click("#trigger-submit")]);
    expect(page.url().includes(`/dags/${DAG_ID}`), `the DAG page after triggering, got ${page.url()}`);
    expect(!page.url().includes("flash"), `no message in the URL, got ${page.url()}`);
    const flash = await page.locator("#flash").textContent();
    expect(flash.includes("Triggered run"), `the success banner after triggering, got ${flash}`);
    await page.reload();
    expect((await page.locator("#flash").count()) === 0, "the banner shown once, gone on reload");
    await page.goto(`${BASE}/dags/${DAG_ID}/runs`);
    expect((await page.textContent("[data-live-id=runs]")).includes("2026-01-31 10:30:00 UTC"), "the picked logical date, in UTC");
    await page.goto(`${BASE}/dags/${DAG_ID}`);

    step = "the task-instance page follows a try to its end";
    const slowCell = page.locator("#grid tr[data-task-id=slow] td[class^='s-']").last();
    await waitFor("the slow task's cell", 15000, async () => (await slowCell.count()) > 0);
    await slowCell.click();
    await Promise.all([page.waitForLoadState("load"), page.locator("#grid-details a", { hasText: "Open the task instance" }).click()]);
    await waitFor("the slow try to start", 15000, async () => {
      if ((await page.locator("summary[data-live-id='try-1-head']").count()) === 0) {
        await page.reload();
        return false;
      }
      return true;
    });
    {
      expect((await page.locator("#ti-state", { hasText: "running" }).count()) === 1, "the slow try running");
      await page.evaluate(() => { window.__notReloaded = true; });
      const first = await page.locator("#ti-details [data-since]").textContent();
      await page.waitForTimeout(1500);
      const later = await page.locator("#ti-details [data-since]").textContent();
      expect(first !== later, `the running duration to tick, got ${first} then ${later}`);
      await waitFor("the rendered command while the try runs", 5000, async () =>
        (await page.textContent("[data-live-id='ti-outputs']")).includes("sleep 6; echo slow-done"));
      expect((await page.locator("#ti-state", { hasText: "running" }).count()) === 1, "shown before the try ends");
      await waitFor("the try header to say success", 20000, async () =>
        (await page.locator("summary[data-live-id='try-1-head'] .state", { hasText: "success" }).count()) === 1);
      await waitFor("the XCom to appear", 10000, async () =>
        (await page.textContent("[data-live-id='ti-outputs']")).includes("slow-done"));
      expect(await page.evaluate(() => window.__notReloaded === true), "the page updated in place");
      expect(!(await page.textContent("summary[data-live-id='try-1-head']")).includes("→ —"), "the try's end time is shown");
    }
    await page.goBack();

    step = "operator watches the grid turn green";
    await waitFor("both tasks to succeed in the grid", 30000, async () => {
      const ok = await page.locator("#grid tbody td.s-success").count();
      return ok >= 3;
    });
    await shot(page, "grid");
    const symbol = await page.evaluate(() => getComputedStyle(document.querySelector("#grid tbody td.s-success"), "::before").content);
    expect(symbol === '"✓"', `a success cell carries a symbol as well as its colour, got ${symbol}`);
    await audit(page, "grid");
    step = "the grid is one tab stop, walked with the arrow keys, and opens details";
    {
      const stops = await page.evaluate(() => ({
        zero: document.querySelectorAll('#grid [tabindex="0"]').length,
        links: Array.from(document.querySelectorAll("#grid a, #grid button")).filter((e) => e.tabIndex >= 0).length,
      }));
      expect(stops.zero === 1 && stops.links === 0, `one tab stop in the grid, got ${JSON.stringify(stops)}`);
      await page.focus('#grid [tabindex="0"]');
      const where = () => page.evaluate(() => {
        const a = document.activeElement;
        const cell = a.closest("td, th");
        return { row: cell.parentElement.dataset.taskId || "runs", col: cell.cellIndex, tag: a.tagName };
      });
      const first = await where();
      await page.keyboard.press("ArrowUp");
      const up = await where();
      expect(up.row === "runs" && up.col === first.col && up.tag === "A", `ArrowUp reaches the run's bar, got ${JSON.stringify(up)}`);
      await page.keyboard.press("ArrowDown");
      await page.keyboard.press("Home");
      expect((await where()).col === 0, "Home goes to the task's name");
      await page.keyboard.press("ArrowRight");
      const cell = await where();
      expect(cell.col === 1 && cell.tag === "TD", `ArrowRight goes to the oldest run's cell, got ${JSON.stringify(cell)}`);
      const label = await page.evaluate(() => document.activeElement.getAttribute("aria-label"));
      expect(/ · (success|failed|running|queued|scheduled)/.test(label || ""), `the focused cell is named with its state, got ${label}`);
      await page.keyboard.press("Enter");
      const panel = page.locator("#grid-details");
      expect(await panel.isVisible(), "Enter opens the details");
      expect((await panel.locator("h2").textContent()) === cell.row, "the details name the cell's task");
      await waitFor("the tries in the details", 5000, async () => (await panel.locator("ol.tries a", { hasText: "Try 1" }).count()) === 1);
      expect((await panel.locator("svg.duration-chart rect").count()) >= 1, "a duration chart of the task across runs");
      await shot(page, "grid_details");
      await audit(page, "grid with details");
      await page.keyboard.press("Escape");
      expect(!(await panel.isVisible()), "Escape closes the details");
      expect((await where()).col === 1, "the focus goes back to the cell");
      await page.locator("#grid th.runcol a").last().click();
      expect((await panel.locator("figcaption").textContent()).includes("Duration of each run"), "a run's bar opens the run's details");
      expect(page.url().endsWith(`/dags/${DAG_ID}`), `the click stayed on the grid, got ${page.url()}`);
      await page.locator("#grid a.task-link", { hasText: "say" }).click();
      expect((await panel.locator("h2").textContent()) === "say", "a task's name opens the task's details");
      expect((await panel.locator("a", { hasText: "Every instance of this task" }).count()) === 1, "with the task across runs");
      await page.hover("#grid tr[data-task-id=done] td:nth-child(2)");
      const tip = await page.getAttribute("#grid tr[data-task-id=done] td:nth-child(2)", "title");
      expect((tip || "").startsWith("done · ") && tip.includes(" · try "), `a cell's tooltip, got ${tip}`);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.locator("#grid tr[data-task-id=say] td:nth-child(2)").click();
      const across = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(across <= 391, `the grid with its details fits 390 px, got ${across}`);
      await shot(page, "grid_details_phone");
      await page.setViewportSize({ width: 1400, height: 900 });
    }
    step = "the DAG's versions: the editor's saves, who saved them, what changed";
    await page.goto(`${BASE}/dags/${DAG_ID}/versions`);
    {
      const rows = await page.locator("#versions tbody tr[data-version]").count();
      expect(rows >= 1, `the versions written in the editor are listed, got ${rows}`);
      const by = await page.locator("#versions tbody tr[data-version] td[data-label='Saved by']").first().textContent();
      expect(by.startsWith("editor: "), `saved from the editor by its author, got ${by}`);
      await shot(page, "dag_versions");
      await audit(page, "versions");
      await page.goto(`${BASE}/dags/${DAG_ID}/backfills`);
      expect((await page.locator("#backfill-unscheduled").count()) === 1, "a manual DAG has nothing to backfill, and says so");
      await shot(page, "dag_backfills");
      await audit(page, "backfills");
    }
    await page.goto(`${BASE}/dags/${DAG_ID}`);
    await page.locator("#grid tr[data-task-id=say] td:nth-child(2)").click();
    await Promise.all([page.waitForLoadState("load"), page.locator("#grid-details a", { hasText: "Open the task instance" }).click()]);
    await waitFor("the task log to show the param", 10000, async () =>
      (await page.textContent("body")).includes("bonjour from the browser test"));
    await shot(page, "task_instance");
    await audit(page, "task instance");
    step = "a 200-wide run page stays short";
    await page.goto(`${BASE}/dags/wide/trigger`);
    await Promise.all([page.waitForLoadState("load"), page.click("#trigger-submit")]);
    await page.goto(`${BASE}/dags/wide/runs`);
    await Promise.all([page.waitForLoadState("load"), page.locator("[data-live-id=runs] a[href*='/runs/']").first().click()]);
    await waitFor("the wide run to succeed", 20000, async () => {
      await page.reload();
      return (await page.locator("#run-state", { hasText: "success" }).count()) === 1;
    });
    const tall = await page.evaluate(() => document.documentElement.scrollHeight);
    expect(tall < 3000, `a 200-wide run page under 3,000 px tall, got ${tall}`);
    expect((await page.locator("#gantt .tick").count()) >= 2, "a time axis with ticks");
    await shot(page, "run_wide");
    step = "the gantt zooms into a dragged time range";
    {
      const track = page.locator("#gantt details.mapped > summary .track");
      const box = await track.boundingBox();
      await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 6 });
      await page.mouse.up();
      expect(await page.locator(".gantt-tools").isVisible(), "the zoom's tools appear");
      const range = await page.textContent("#gantt-range");
      expect(range.startsWith("Showing +"), `the range shown, got ${range}`);
      expect((await page.locator("#gantt .tick").first().textContent()) !== "0", "the axis starts inside the run");
      expect((await page.locator("details.mapped[open]").count()) === 0, "the drag does not open the mapped row");
      await shot(page, "run_gantt_zoomed");
      await page.keyboard.press("Escape");
      expect(!(await page.locator(".gantt-tools").isVisible()), "Escape shows the whole run");
      expect((await page.locator("#gantt .tick").first().textContent()) === "0", "the axis from 0 again");
    }
    await page.click("details.mapped > summary");
    expect((await page.locator("details.mapped[open] > div.row").count()) === 200, "the mapped row opens onto its 200 instances");
    step = "a 60,000-line log reads like a terminal";
    await page.goto(`${BASE}/dags/noisy/trigger`);
    await Promise.all([page.waitForLoadState("load"), page.click("#trigger-submit")]);
    await page.goto(`${BASE}/dags/noisy/runs`);
    await Promise.all([page.waitForLoadState("load"), page.locator("[data-live-id=runs] a[href*='/runs/']").first().click()]);
    await waitFor("the noisy run to succeed", 30000, async () => {
      await page.reload();
      return (await page.locator("#run-state", { hasText: "success" }).count()) === 1;
    });
    await Promise.all([page.waitForLoadState("load"), page.locator("a[href*='/tasks/noisy']").first().click()]);
    {
      const log = page.locator("div.log").first();
      await log.waitFor();
      const href = await page.getAttribute("a.download", "href");
      const dl = await page.request.get(`${BASE}${href}`);
      expect((dl.headers()["content-disposition"] || "").startsWith("attachment"), "the download is an attachment");
      const total = (await dl.text()).split("\n").length - 1;
      expect(total > 60006, `the download holds every line, got ${total}`);
      const last = await log.locator(".ln").last();
      expect((await log.locator(".ln.out").last().textContent()).includes("line 60000"), "the log opens at its end");
      expect(await log.evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 4), "scrolled to its end");
      expect((await last.getAttribute("data-n")) === String(total), `the last line numbered ${total}, got ${await last.getAttribute("data-n")}`);
      expect((await log.locator(".ln .ts").first().getAttribute("title")).endsWith("Z"), "every line has its UTC time");
      const shown = await log.locator(".ln").count();
      expect(shown < total, `a large log shows its end only, got ${shown} lines`);
      const earlier = page.locator("button.log-earlier").first();
      expect(await earlier.isVisible(), "a Load earlier button");
      for (let i = 0; i < 40 && (await earlier.isVisible()); i++) {
        const before = await log.locator(".ln").count();
        await earlier.click();
        const grew = async () => (await log.locator(".ln").count()) > before;
        for (let t = 0; t < 100 && !(await grew()); t++) await page.waitForTimeout(100);
        expect(await grew(), `earlier part ${i}: still ${before} lines, starting at byte ${await page.getAttribute(".log-view", "data-log-start")}, button says ${await earlier.textContent()}`);
      }
      expect(!(await earlier.isVisible()), "Load earlier goes back to the first line");
      expect((await log.locator(".ln").count()) === total, `every line once, got ${await log.locator(".ln").count()}`);
      expect((await log.locator(".ln").first().getAttribute("data-n")) === "1", "the first line is line 1");
      const red = log.locator(".ln .fa1", { hasText: "red alert" });
      expect((await red.count()) === 1, "ANSI red rendered as a coloured span");
      expect((await log.locator(".ln .fa2.bold", { hasText: "bold green" }).count()) === 1, "ANSI bold green");
      expect(!(await log.textContent()).includes("\x1b"), "no escape characters shown");
      const inside = log.locator(".ln.out", { hasText: "inside the group" });
      expect(await inside.isHidden(), "a ::group:: is folded");
      await log.locator(".grp-toggle", { hasText: "Setup steps" }).click();
      expect(await inside.isVisible(), "a click unfolds the group");
      expect((await log.locator(".ln.err", { hasText: "to stderr" }).count()) === 1, "stderr lines told apart");
      expect((await log.locator(".ln.out.lvl-error", { hasText: "something went wrong" }).count()) === 1, "ERROR lines coloured");
      expect((await log.locator("img").count()) === 0, "markup a task prints stays text");
      expect((await log.locator(".ln.out", { hasText: '<img src=x onerror="document.title=1">not markup</img>' }).count()) === 1, "and reads as printed");
      await page.fill(".log-search", "line 59990");
      await waitFor("the search to find the line", 5000, async () =>
        ((await page.textContent(".log-hits")) || "").includes("1 of 1"));
      expect((await log.locator(".ln.current").textContent()).includes("line 59990"), "the match is the current line");
      await page.click(".log-wrap");
      expect(!(await log.getAttribute("class")).includes("wrap"), "the wrap toggle unwraps");
      await page.click(".log-wrap");
      await log.locator(".ln.out", { hasText: "red alert" }).scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(SHOTS, "log.png") });
    }
    step = "runs are filtered and marked in bulk; home shows the failure";
    await page.goto(`${BASE}/dags/noisy/runs`);
    await page.selectOption("#filter-state", "success");
    await Promise.all([page.waitForLoadState("load"), page.click("#filter-apply")]);
    expect(page.url().includes("state=success"), `the filter is in the URL, got ${page.url()}`);
    const states = await page.locator("#run-list .state").allTextContents();
    expect(states.length >= 1 && states.every((s) => s === "success"), `only successful runs, got ${states}`);
    await page.locator("input.bulk-pick").first().check();
    page.once("dialog", (d) => d.accept());
    await Promise.all([page.waitForLoadState("load"), page.click(".bulk-actions button[value=mark_failed]")]);
    const bulkFlash = await page.locator("#flash").textContent();
    expect(bulkFlash.includes("1 run(s) marked failed"), `the bulk action's outcome, got ${bulkFlash}`);
    expect(page.url().includes("state=success"), `back on the filtered list, got ${page.url()}`);
    await shot(page, "runs_filtered");
    await audit(page, "runs list");
    await page.goto(`${BASE}/home`);
    expect((await page.textContent("#home-failed")).includes("noisy"), "home lists the run that failed");
    await shot(page, "home");
    await audit(page, "home");
    await page.goto(`${BASE}/task-instances?dag=noisy`);
    expect((await page.locator("#ti-list a[href*='/tasks/noisy']").count()) >= 1, "the task-instance browser lists noisy");
    await audit(page, "task instances");
    await page.goto(`${BASE}/dags/${DAG_ID}/graph`);
    expect((await page.locator("svg.graph").count()) === 1, "an SVG graph");
    await shot(page, "graph");
    await audit(page, "graph");
    await page.goto(`${BASE}/dags/${DAG_ID}/runs`);
    await Promise.all([page.waitForLoadState("load"), page.locator("[data-live-id=runs] a[href*='/runs/']").first().click()]);
    await audit(page, "run");
    await logout(page);

    step = "viewer only reads";
    // A deep link opened while logged out leads there after the login.
    await page.goto(`${BASE}/dags/${DAG_ID}/runs`);
    await page.waitForURL(/\/login\?next=/);
    await page.fill("#username", "victor");
    await page.fill("#password", "victor-password-1");
    await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
    expect(page.url().endsWith(`/dags/${DAG_ID}/runs`), `the asked page after login, got ${page.url()}`);
    await page.goto(`${BASE}/dags`);
    const state = page.locator(`tr[data-dag-id=${DAG_ID}] .toggle`);
    const box = await state.boundingBox();
    expect(box && box.width >= 24 && box.height >= 12, `a visible paused/active state for a viewer, got ${JSON.stringify(box)}`);
    expect((await state.getAttribute("aria-label")) === "active", "the state is named for screen readers");
    const missing = await page.goto(`${BASE}/dags/no_such_dag`);
    expect(missing.status() === 404, `404 for a missing DAG, got ${missing.status()}`);
    expect((await page.locator("header nav a[href='/dags']").count()) === 1, "the 404 page keeps the navigation");
    await shot(page, "not_found");
    expect(!(await page.locator("a.button", { hasText: "Trigger" }).count()), "no trigger button for a viewer");
    r = await directPost(page, `/dags/${DAG_ID}/pause`, { paused: "true" });
    expect(r.status() === 403, `a direct pause by the viewer to get 403, got ${r.status()}`);
    const ti = await page.goto(`${BASE}/dags/${DAG_ID}`);
    expect(ti.status() === 200, "the viewer can read the DAG page");
    step = "a 32-task graph fits, zooms, pans and highlights";
    await page.goto(`${BASE}/dags/branchy/graph`);
    const size = () => page.evaluate(() => {
      const s = document.querySelector("svg.graph");
      const w = document.querySelector(".graph-wrap");
      return { svg: s.getBoundingClientRect().width, panel: w.clientWidth, drawn: Number(s.dataset.width), view: s.getAttribute("viewBox") };
    });
    const fitted = await size();
    expect(fitted.drawn > fitted.panel, `a drawing wider than the panel, got ${JSON.stringify(fitted)}`);
    expect(fitted.svg <= fitted.panel, `the graph fits its panel, got ${JSON.stringify(fitted)}`);
    const last = page.locator("g.node[data-task-id=end]");
    const endBox = await last.boundingBox();
    const panel = await page.locator(".graph-wrap").boundingBox();
    expect(endBox && endBox.x + endBox.width <= panel.x + panel.width + 1, "the last node is inside the panel");
    expect((await page.textContent("g.node[data-task-id=join]")).includes("all_done"), "the join shows its trigger rule");
    await shot(page, "graph_fit");
    await page.hover("g.node[data-task-id=branch_1_step_3]");
    expect(await page.evaluate(() => document.querySelector("svg.graph").classList.contains("focus")), "hovering highlights");
    const lit = await page.evaluate(() => Array.from(document.querySelectorAll("g.node.hl"), (n) => n.dataset.taskId).sort());
    expect(lit.includes("start") && lit.includes("branch_1_step_0") && lit.includes("end") && !lit.includes("branch_2_step_3"),
      `upstream and downstream highlighted, others not: ${lit}`);
    await shot(page, "graph_hover");
    await page.click("[data-graph=in]");
    await page.click("[data-graph=in]");
    const zoomed = await size();
    expect(zoomed.view !== fitted.view, `zoom in changes the view, got ${zoomed.view}`);
    await page.keyboard.press("ArrowRight");
    expect((await size()).view !== zoomed.view, "an arrow key pans");
    await shot(page, "graph_zoomed");
    await page.keyboard.press("0");
    const nums = (v) => v.split(/[ ,]+/).map(Number).join(" ");
    expect(nums((await size()).view) === nums(fitted.view), "0 fits again");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    const phone = await size();
    expect(phone.svg <= phone.panel, `the graph fits a phone, got ${JSON.stringify(phone)}`);
    await shot(page, "graph_phone");
    step = "phone-sized pages have no sideways scroll";
    const wide = () => page.evaluate(() => document.documentElement.scrollWidth);
    for (const [name, url] of [["dags_phone", "/dags"], ["home_phone", "/home"], ["all_runs_phone", "/runs"], ["tis_phone", "/task-instances"], ["runs_phone", `/dags/${DAG_ID}/runs`]]) {
      await page.goto(`${BASE}${url}`);
      expect((await wide()) <= 391, `${url} fits 390 px, got ${await wide()}`);
      await shot(page, name);
    }
    await Promise.all([page.waitForLoadState("load"), page.locator("[data-live-id=runs] a[href*='/runs/']").first().click()]);
    expect((await wide()) <= 391, `the run page fits 390 px, got ${await wide()}`);
    await shot(page, "run_phone");
    await Promise.all([page.waitForLoadState("load"), page.locator("#run-tis a").first().click()]);
    expect((await wide()) <= 391, `the task-instance page fits 390 px, got ${await wide()}`);
    await shot(page, "task_instance_phone");
    await page.setViewportSize({ width: 1400, height: 900 });
    step = "task groups fold in the grid and the graph";
    await page.goto(`${BASE}/dags/grouped`);
    const toggle = page.locator("button[data-group-toggle=extract]");
    expect((await toggle.getAttribute("aria-expanded")) === "true", "a group starts unfolded");
    expect(await page.locator("tr[data-task-id='extract.raw.dump']").isVisible(), "the nested group's task is shown");
    await toggle.click();
    expect((await toggle.getAttribute("aria-expanded")) === "false", "the toggle folds the group");
    expect(!(await page.locator("tr[data-task-id='extract.fetch']").isVisible()), "its tasks are hidden");
    expect(!(await page.locator("tr[data-task-id='extract.raw.dump']").isVisible()), "and its nested group's");
    expect(await page.locator("tr[data-task-id='load.mart']").isVisible(), "another group's tasks stay");
    await page.reload();
    expect(!(await page.locator("tr[data-task-id='extract.fetch']").isVisible()), "the folding is remembered");
    await shot(page, "grid_groups");
    await audit(page, "grid with groups");
    await page.click("button[data-groups-all=expand]");
    expect(await page.locator("tr[data-task-id='extract.fetch']").isVisible(), "expand all unfolds");
    await page.goto(`${BASE}/dags/grouped/graph`);
    await Promise.all([page.waitForLoadState("load"), page.locator(".graph-groups a", { hasText: "fold all" }).first().click()]);
    const boxes = await page.evaluate(() => Array.from(document.querySelectorAll("g.node"), (n) => n.dataset.taskId).sort());
    expect(JSON.stringify(boxes) === JSON.stringify(["end", "extract", "load", "start"]), `folded groups drawn as one box each, got ${boxes}`);
    await shot(page, "graph_groups");
    await audit(page, "graph with groups");
    await Promise.all([page.waitForLoadState("load"), page.locator("g.node[data-task-id=extract]").click()]);
    const open = await page.evaluate(() => Array.from(document.querySelectorAll("g.node"), (n) => n.dataset.taskId).sort());
    expect(open.includes("extract.fetch") && open.includes("extract.raw") && !open.includes("extract.raw.dump") && open.includes("load"),
      `clicking a box unfolds it alone (its nested group stays folded), got ${open}`);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/dags/grouped`);
    expect((await wide()) <= 391, `the grid with groups fits 390 px, got ${await wide()}`);
    await shot(page, "grid_groups_phone");
    await page.setViewportSize({ width: 1400, height: 900 });
    step = "assets: the page, the graph, an event posted, the DAG's tab";
    const zoned = await browser.newContext({ viewport: { width: 1400, height: 900 }, timezoneId: "Asia/Kolkata" });
    const ap = await zoned.newPage();
    ap.setDefaultTimeout(15000);
    await login(ap, "olivia", "olivia-password-1");
    await ap.goto(`${BASE}/assets`);
    const assetNodes = await ap.evaluate(() => Array.from(document.querySelectorAll("#asset-graph g.node"), (n) => n.dataset.taskId).sort());
    expect(JSON.stringify(assetNodes) === JSON.stringify(["lake_in", "mart_out", "◆ s3://lake/in/"]), `the asset graph draws both DAGs and the asset, got ${assetNodes}`);
    expect((await ap.locator("#assets tr[data-asset='s3://lake/in/'] td", { hasText: "lake_in" }).count()) === 1, "the producer is listed");
    await shot(ap, "assets");
    await audit(ap, "assets");
    await Promise.all([ap.waitForLoadState("load"), ap.locator("#assets a.mono", { hasText: "s3://lake/in/" }).click()]);
    await ap.fill("#asset-extra", '{"rows": 3}');
    await Promise.all([ap.waitForLoadState("load"), ap.click("#asset-event-post")]);
    expect((await ap.locator("#flash").textContent()).includes("recorded for s3://lake/in/"), "the event is recorded");
    await waitFor("the event's run", 15000, async () => {
      await ap.reload();
      return (await ap.locator("#asset-events tr[data-event] a", { hasText: "mart_out" }).count()) === 1;
    });
    await shot(ap, "asset");
    await audit(ap, "asset");
    step = "times in the browser's zone, UTC on hover and by the header's switch";
    const when = ap.locator("#asset-events tr[data-event] td[data-label=When]").first();
    const utcText = await when.getAttribute("data-utc");
    expect(/ UTC$/.test(utcText || ""), `the server's UTC time is kept, got ${utcText}`);
    const shown = await when.textContent();
    const [d, t] = utcText.split(" ");
    const inKolkata = new Date(Date.parse(`${d}T${t}Z`) + 330 * 60000).toISOString().replace("T", " ").slice(0, 19);
    expect(shown.startsWith(inKolkata) && !shown.endsWith("UTC"), `shown in the browser's zone (${inKolkata}), got ${shown}`);
    expect((await when.getAttribute("title")).includes(utcText), "the UTC time on hover");
    await ap.click("#zone-toggle");
    expect((await when.textContent()) === utcText, "the switch shows UTC");
    await ap.reload();
    expect((await ap.locator("#asset-events tr[data-event] td[data-label=When]").first().textContent()) === utcText, "the choice is kept");
    await ap.click("#zone-toggle");
    await ap.goto(`${BASE}/dags/mart_out/assets`);
    expect((await ap.locator("#dag-waited tr[data-asset='s3://lake/in/']").count()) === 1, "the tab lists what the DAG waits for");
    await shot(ap, "dag_assets");
    await audit(ap, "DAG assets tab");
    await ap.setViewportSize({ width: 390, height: 844 });
    for (const [url, name] of [["/assets", "assets_phone"], ["/dags/mart_out/assets", "dag_assets_phone"]]) {
      await ap.goto(`${BASE}${url}`);
      const width = await ap.evaluate(() => document.documentElement.scrollWidth);
      expect(width <= 391, `${url} fits 390 px, got ${width}`);
      await shot(ap, name);
    }
    await zoned.close();

    step = "dark mode follows the system, and the toggle overrides it";
    const darkContext = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: "dark" });
    const dark = await darkContext.newPage();
    dark.setDefaultTimeout(15000);
    await login(dark, "victor", "victor-password-1");
    const bg = () => dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect((await bg()) === "rgb(15, 20, 27)", `a dark page for a dark system, got ${await bg()}`);
    await audit(dark, "DAG list (dark)");
    await shot(dark, "dags_dark");
    await dark.goto(`${BASE}/home`);
    await audit(dark, "home (dark)");
    await shot(dark, "home_dark");
    await dark.goto(`${BASE}/dags/${DAG_ID}`);
    await audit(dark, "grid (dark)");
    await shot(dark, "grid_dark");
    await dark.locator("#grid tr[data-task-id=say] td:nth-child(2)").click();
    await audit(dark, "grid with details (dark)");
    await shot(dark, "grid_details_dark");
    await Promise.all([dark.waitForLoadState("load"), dark.locator("#grid-details a", { hasText: "Open the task instance" }).click()]);
    await audit(dark, "task instance (dark)");
    await shot(dark, "task_instance_dark");
    await dark.goto(`${BASE}/dags/grouped`);
    await audit(dark, "grid with groups (dark)");
    await shot(dark, "grid_groups_dark");
    await dark.goto(`${BASE}/dags/branchy/graph`);
    await audit(dark, "graph (dark)");
    await dark.goto(`${BASE}/assets`);
    await audit(dark, "assets (dark)");
    await shot(dark, "assets_dark");
    await shot(dark, "graph_dark");
    await dark.click("#theme-toggle");
    expect((await bg()) === "rgb(246, 247, 249)", `the toggle switches to light, got ${await bg()}`);
    await dark.reload();
    expect((await bg()) === "rgb(246, 247, 249)", "the choice is kept across pages");
    await darkContext.close();

    step = "accessibility (axe-core)";
    expect(accessibility.length === 0, `no critical or serious axe-core finding, got:\n  ${accessibility.join("\n  ")}`);
    console.log("browser scenario: all steps passed");
  } catch (e) {
    console.error(`browser scenario FAILED at step "${step}": ${e.message}`);
    await shot(page, "failure").catch(() => {});
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main();
