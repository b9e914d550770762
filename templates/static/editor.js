// DAG-file editor (templates/editor.html): CodeMirror 6 in place of the textarea, validation
// as you type, a diff before saving. Plain ES2017, no build step; loaded with `defer` after
// /static/codemirror.js, the bundle of scripts/codemirror.sh that sets window.UpdraftCM.
//
// What it needs of the page:
//   form#editor-form                  posted as usual; an <input name="new"> in it marks a new
//                                     file (saved without a diff)
//   textarea#editor-content           the text; stays in the form, hidden, kept in sync, so the
//                                     form posts what the editor shows. Its aria-label names
//                                     the editor ("DAG file"); data-original, when present, is
//                                     the text the diff compares with (else what was served)
//   ul#editor-errors                  validation results: li.error[data-line][data-column]
//                                     (<span class="mono">line:col</span> message) or li.ok
//   button#editor-validate[data-validate-url]   validates at once
//   button#editor-save                the form's submit button
// Without window.UpdraftCM (the bundle did not load) the textarea stays, and Validate, the
// error list and the diff-less save still work on it.
(function () {
  "use strict";
  const DEBOUNCE_MS = 600;

  const isDark = () => document.documentElement.dataset.theme === "dark";
  const isMac = /Mac|iPhone|iPad/.test(navigator.platform || "");

  // Syntax colours, each with at least 4.5:1 contrast (WCAG AA) against the editor's
  // background and everything drawn over it: the active line, the selection, search and
  // selection matches (also on the active line), the diff's added and removed lines; in both
  // modes (light: on #fff, dark: on #0f141b, the --input-bg of each).
  const PALETTE = {
    light: {
      key: "#0a4fa0", string: "#116329", comment: "#5a6475", keyword: "#7a2fc0",
      label: "#8f3b00", punct: "#4d5769", invalid: "#b3261e", gutter: "#566072",
      activeLine: "rgba(37, 99, 235, 0.06)", selection: "#d8e5ff", selectionBlur: "#e3e8ef",
      searchMatch: "rgba(255, 196, 0, 0.35)", searchOutline: "#8f3b00", selectionMatch: "rgba(37, 99, 235, 0.12)",
    },
    dark: {
      key: "#8cb8ff", string: "#7ee0a0", comment: "#a7b1c2", keyword: "#d2a8ff",
      label: "#ffa657", punct: "#b3bdcc", invalid: "#ff8a80", gutter: "#9aa6b8",
      activeLine: "rgba(122, 167, 255, 0.07)", selection: "#233a57", selectionBlur: "#1f2a38",
      searchMatch: "rgba(255, 214, 0, 0.16)", searchOutline: "#ffa657", selectionMatch: "rgba(122, 167, 255, 0.16)",
    },
  };

  // Positions: 1-based line and column (0: unknown) to an offset in `doc`, clamped.
  function position(doc, line, column) {
    const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
    const col = column > 0 ? Math.min(column - 1, l.length) : 0;
    return { line: l, from: l.from + col, column: column };
  }

  // The results list, in the server's markup; a click or Enter on an error goes to it.
  function renderResults(list, result) {
    list.textContent = "";
    if (result.valid) {
      const li = document.createElement("li");
      li.className = "ok";
      li.textContent = "Valid: DAG " + result.dag_id;
      list.appendChild(li);
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
      li.appendChild(pos);
      li.appendChild(document.createTextNode(" " + e.message));
      list.appendChild(li);
    });
    markFocusable(list);
  }
  function markFocusable(list) {
    list.querySelectorAll("li.error[data-line]").forEach((li) => {
      if (Number(li.dataset.line) > 0) {
        li.tabIndex = 0;
        li.title = "Go to line " + li.dataset.line + (Number(li.dataset.column) > 0 ? ", column " + li.dataset.column : "");
      }
    });
  }
  // The errors the server rendered with the page (a refused save), as results.
  function resultsOf(list) {
    const errors = [];
    list.querySelectorAll("li.error").forEach((li) => {
      const pos = li.querySelector(".mono");
      const text = li.textContent.slice(pos ? pos.textContent.length : 0).trim();
      errors.push({ line: Number(li.dataset.line) || 0, column: Number(li.dataset.column) || 0, message: text });
    });
    return errors.length ? { valid: false, errors: errors } : null;
  }

  // The plain textarea, when CodeMirror is not there.
  function textareaEditor(ta) {
    return {
      text: () => ta.value,
      onChange: (fn) => ta.addEventListener("input", fn),
      show: () => {},
      goTo: (line, column) => {
        const lines = ta.value.split("\n");
        let start = 0;
        for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
        const len = (lines[line - 1] || "").length;
        ta.focus();
        ta.setSelectionRange(start + Math.min(Math.max(column - 1, 0), len), start + len);
      },
      focus: () => ta.focus(),
    };
  }

  function codeMirrorEditor(CM, ta, form) {
    const themeSlot = new CM.Compartment();

    function highlight(p) {
      const t = CM.tags;
      return CM.HighlightStyle.define([
        { tag: [t.definition(t.propertyName), t.propertyName], color: p.key },
        { tag: [t.string, t.special(t.string), t.attributeValue], color: p.string },
        { tag: [t.lineComment, t.comment, t.meta], color: p.comment, fontStyle: "italic" },
        { tag: [t.keyword, t.typeName, t.bool, t.null, t.atom], color: p.keyword },
        { tag: [t.number], color: p.keyword },
        { tag: [t.labelName], color: p.label },
        { tag: [t.separator, t.punctuation, t.squareBracket, t.brace], color: p.punct },
        { tag: [t.invalid], color: p.invalid },
      ]);
    }
    function theme(darkMode) {
      const p = darkMode ? PALETTE.dark : PALETTE.light;
      return [
        CM.EditorView.theme(
          {
            "&": {
              color: "var(--ink)", backgroundColor: "var(--input-bg)", border: "1px solid var(--input-line)",
              borderRadius: "4px", fontSize: "13px", maxHeight: "75vh", minWidth: "0",
            },
            "&.cm-focused": { outline: "2px solid var(--accent)", outlineOffset: "1px" },
            ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", lineHeight: "1.5", overflow: "auto" },
            ".cm-content": { caretColor: "var(--ink)", tabSize: "2" },
            ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--ink)", borderLeftWidth: "2px" },
            ".cm-selectionBackground": { backgroundColor: p.selectionBlur + " !important" },
            "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground": { backgroundColor: p.selection + " !important" },
            ".cm-activeLine": { backgroundColor: p.activeLine },
            ".cm-gutters": { backgroundColor: "var(--code-bg)", color: p.gutter, borderRight: "1px solid var(--line)", borderRadius: "4px 0 0 4px" },
            ".cm-activeLineGutter": { backgroundColor: p.activeLine, color: "var(--ink)" },
            ".cm-lineNumbers .cm-gutterElement": { padding: "0 6px 0 8px" },
            ".cm-matchingBracket": { outline: "1px solid " + p.punct },
            ".cm-searchMatch": { backgroundColor: p.searchMatch },
            ".cm-searchMatch.cm-searchMatch-selected": { outline: "2px solid " + p.searchOutline },
            ".cm-selectionMatch": { backgroundColor: p.selectionMatch },
            ".cm-searchMatch .cm-selectionMatch": { backgroundColor: "transparent" },
            // The search panel (Ctrl-F): page colours, fields and buttons at least 24 px.
            ".cm-panels": { backgroundColor: "var(--panel)", color: "var(--ink)" },
            ".cm-panels.cm-panels-top": { borderBottom: "1px solid var(--line)" },
            ".cm-panels.cm-panels-bottom": { borderTop: "1px solid var(--line)" },
            ".cm-panel.cm-search": { padding: "6px 32px 6px 8px", fontSize: "13px" },
            ".cm-panel.cm-search label": { display: "inline-flex", alignItems: "center", minHeight: "24px", fontSize: "13px", fontWeight: "normal", margin: "2px 6px 2px 0" },
            ".cm-panel.cm-search input[type=checkbox]": { width: "16px", height: "16px", margin: "0 4px 0 0" },
            ".cm-textfield": {
              backgroundColor: "var(--input-bg)", color: "var(--ink)", border: "1px solid var(--input-line)",
              borderRadius: "4px", minHeight: "28px", fontSize: "13px", padding: "2px 6px", maxWidth: "100%",
            },
            ".cm-button": {
              backgroundImage: "none", backgroundColor: "var(--btn2-bg)", color: "var(--ink)", border: "1px solid var(--input-line)",
              borderRadius: "4px", minHeight: "28px", fontSize: "13px", padding: "2px 10px", margin: "2px 4px 2px 0",
            },
            ".cm-panel.cm-search [name=close]": {
              width: "28px", height: "28px", top: "4px", right: "4px", fontSize: "20px", lineHeight: "1", color: "var(--ink)",
            },
            ".cm-tooltip": { backgroundColor: "var(--panel)", color: "var(--ink)", border: "1px solid var(--line)" },
            ".cm-tooltip-lint": { fontSize: "13px" },
            ".cm-diagnostic": { padding: "4px 8px" },
            ".cm-diagnostic-error": { borderLeft: "4px solid var(--danger)" },
            // CodeMirror draws the underline and the gutter marker with data: SVG images, which
            // the page's CSP (no img-src data:) blocks: CSS instead.
            ".cm-lintRange-error": {
              backgroundImage: "none", textDecoration: "underline wavy " + p.invalid, textDecorationThickness: "1.5px",
              textUnderlineOffset: "3px", textDecorationSkipInk: "none",
            },
            ".cm-lint-marker-error": {
              content: "normal", display: "flex", alignItems: "center", justifyContent: "center", width: "14px", height: "14px",
              margin: "2px auto 0", borderRadius: "50%", backgroundColor: "var(--danger)", color: darkMode ? "#0b1220" : "#fff",
              fontSize: "11px", fontWeight: "700", lineHeight: "1",
            },
            ".cm-lint-marker-error::before": { content: '"!"' },
            ".cm-gutter-lint": { width: "18px" },
            ".cm-gutter-lint .cm-gutterElement": { padding: "0 2px" },
            ".cm-panel.cm-panel-lint ul [aria-selected]": { backgroundColor: "var(--th-bg)", color: "var(--ink)" },
            ".cm-panel.cm-panel-lint ul:focus [aria-selected]": { backgroundColor: p.selection, color: "var(--ink)" },
            ".cm-panel.cm-panel-lint [name=close]": { width: "28px", height: "28px", color: "var(--ink)" },
            // The diff (unified merge view): added and removed lines in the page's ok/error
            // colours, and a + or − in the gutter, so that it is not told by colour alone.
            ".cm-changedLine, .cm-inlineChangedLine": { backgroundColor: "var(--ok-bg) !important" },
            ".cm-deletedChunk": { backgroundColor: "var(--err-bg) !important", paddingLeft: "0" },
            ".cm-deletedChunk .cm-deletedLine": { paddingLeft: "6px" },
            ".cm-changedText, .cm-deletedChunk .cm-deletedText": { background: "none !important", textDecoration: "underline", textDecorationThickness: "2px" },
            ".cm-changedText": { textDecorationColor: darkMode ? "#6fcf8a" : "#1e7b34" },
            ".cm-deletedChunk .cm-deletedText": { textDecorationColor: darkMode ? "#ff8a80" : "#b3261e" },
            ".cm-changeGutter": { width: "16px", paddingLeft: "0" },
            ".cm-changeGutter .cm-gutterElement": { textAlign: "center", fontWeight: "700" },
            ".cm-changedLineGutter, .cm-inlineChangedLineGutter": { background: "var(--ok-bg) !important", color: "var(--ok-ink)" },
            ".cm-changedLineGutter::before, .cm-inlineChangedLineGutter::before": { content: '"+"' },
            ".cm-deletedLineGutter": { background: "var(--err-bg) !important", color: "var(--err-ink)" },
            ".cm-deletedLineGutter::before": { content: '"\u2212"' },
            ".cm-collapsedLines": { color: "var(--ink) !important", background: "var(--th-bg) !important", minHeight: "24px" },
            ".cm-collapsedLines::before, .cm-collapsedLines::after": { content: '"\u2026"' },
          },
          { dark: darkMode }
        ),
        CM.syntaxHighlighting(highlight(p)),
      ];
    }
    // Shared by the editor and the diff: the language, the colours, the line numbers.
    function common() {
      return [CM.lineNumbers(), CM.highlightSpecialChars(), CM.yaml(), CM.indentUnit.of("  "), themeSlot.of(theme(isDark()))];
    }

    const label = ta.getAttribute("aria-label") || "DAG file";
    const hint = document.createElement("p");
    hint.id = "editor-hint";
    hint.className = "muted editor-hint";
    const mod = isMac ? "\u2318" : "Ctrl";
    hint.textContent =
      "Tab indents, Shift-Tab outdents; to leave the editor with the keyboard, press Esc then Tab (or " +
      (isMac ? "Shift-Alt-M" : "Ctrl-M") + " to switch what Tab does). " + mod + "-F searches, " + mod +
      "-S saves; the file is checked as you type.";

    const listeners = [];
    const view = new CM.EditorView({
      state: CM.EditorState.create({
        doc: ta.value,
        extensions: [
          common(),
          CM.highlightActiveLineGutter(),
          CM.history(),
          CM.drawSelection(),
          CM.dropCursor(),
          CM.EditorState.allowMultipleSelections.of(true),
          CM.indentOnInput(),
          CM.bracketMatching(),
          CM.closeBrackets(),
          CM.highlightActiveLine(),
          CM.highlightSelectionMatches(),
          CM.search({ top: true }),
          CM.lintGutter(),
          CM.keymap.of(
            [
              { key: "Mod-s", preventDefault: true, run: () => { requestSave(form); return true; } },
              CM.indentWithTab,
            ].concat(CM.closeBracketsKeymap, CM.defaultKeymap, CM.searchKeymap, CM.historyKeymap, CM.lintKeymap)
          ),
          // tabindex: a contenteditable is focusable anyway, but checkers (axe's
          // scrollable-region-focusable) only see it so.
          CM.EditorView.contentAttributes.of({ "aria-label": label, "aria-describedby": hint.id, tabindex: "0" }),
          CM.EditorView.updateListener.of((u) => {
            if (!u.docChanged) return;
            ta.value = u.state.doc.toString();
            listeners.forEach((fn) => fn());
          }),
        ],
      }),
    });
    ta.hidden = true;
    ta.parentNode.insertBefore(view.dom, ta.nextSibling);
    view.dom.parentNode.insertBefore(hint, view.dom.nextSibling);

    const views = [view];
    new MutationObserver(() => {
      const t = theme(isDark());
      views.forEach((v) => v.dispatch({ effects: themeSlot.reconfigure(t) }));
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

    return {
      text: () => view.state.doc.toString(),
      onChange: (fn) => listeners.push(fn),
      // Results as lint diagnostics: underlined from line:column to the end of the word there
      // (the whole line when the column is unknown), with a marker in the gutter.
      show: (result) => {
        const doc = view.state.doc;
        const diagnostics = [];
        if (!result.valid) {
          (result.errors || []).forEach((e) => {
            if (!(e.line > 0)) return;
            const at = position(doc, e.line, e.column);
            let from = at.from;
            let to = at.line.to;
            if (e.column > 0) {
              const word = /^\S+/.exec(doc.sliceString(from, at.line.to));
              to = word ? from + word[0].length : Math.min(from + 1, at.line.to);
            } else {
              from = at.line.from + /^\s*/.exec(at.line.text)[0].length;
            }
            if (from === to && from > at.line.from) from -= 1;
            diagnostics.push({ from: from, to: to, severity: "error", source: "Updraft", message: e.line + ":" + e.column + " " + e.message });
          });
        }
        view.dispatch(CM.setDiagnostics(view.state, diagnostics));
      },
      goTo: (line, column) => {
        const at = position(view.state.doc, line, column);
        view.dispatch({
          selection: { anchor: at.from },
          effects: CM.EditorView.scrollIntoView(at.from, { y: "center" }),
        });
        view.focus();
      },
      focus: () => view.focus(),
      // The diff of `original` against the editor's text, read-only, in `parent`.
      diff: (original, parent, onTheme) => {
        const text = view.state.doc.toString();
        const d = new CM.EditorView({
          parent: parent,
          state: CM.EditorState.create({
            doc: text,
            extensions: [
              common(),
              CM.EditorState.readOnly.of(true),
              CM.drawSelection(),
              CM.keymap.of(CM.defaultKeymap),
              CM.unifiedMergeView({
                original: original,
                mergeControls: false,
                syntaxHighlightDeletions: true,
                collapseUnchanged: { margin: 3, minSize: 6 },
              }),
              CM.EditorView.lineWrapping,
              CM.EditorView.contentAttributes.of({ "aria-label": "Changes to " + label + " (read only)", "aria-readonly": "true", tabindex: "0" }),
            ],
          }),
        });
        views.push(d);
        const chunks = (CM.getChunks(d.state) || { chunks: [] }).chunks;
        const o = CM.EditorState.create({ doc: original }).doc;
        let removed = 0;
        let added = 0;
        chunks.forEach((c) => {
          if (c.toA > c.fromA) removed += o.lineAt(c.endA).number - o.lineAt(c.fromA).number + 1;
          if (c.toB > c.fromB) added += d.state.doc.lineAt(c.endB).number - d.state.doc.lineAt(c.fromB).number + 1;
        });
        return {
          removed: removed,
          added: added,
          destroy: () => {
            views.splice(views.indexOf(d), 1);
            d.destroy();
          },
        };
      },
    };
  }

  // Submitting the form for real (the diff's Save): requestSubmit runs the browser's checks.
  let confirmed = false;
  function requestSave(form, submitter) {
    if (typeof form.requestSubmit === "function") form.requestSubmit(submitter || undefined);
    else if (!confirmed) form.dispatchEvent(new Event("submit", { cancelable: true })) && form.submit();
    else form.submit();
  }
  function saveForReal(form, submitter) {
    confirmed = true;
    try {
      requestSave(form, submitter);
    } finally {
      confirmed = false;
    }
  }

  // Styles of the pieces outside CodeMirror (the diff dialog, the hint, the status), mounted
  // as a constructed stylesheet: nothing in app.css depends on this file.
  function mountStyles(CM) {
    if (!CM.StyleModule) return;
    CM.StyleModule.mount(
      document,
      new CM.StyleModule({
        "#editor-form .cm-editor": { width: "100%" },
        "#editor-form .cm-content, #editor-form .cm-gutter": { minHeight: "min(460px, 60vh)" },
        ".editor-hint": { fontSize: "12.5px", margin: "6px 0 0" },
        ".editor-status": { marginLeft: "8px" },
        // The Cancel link beside the buttons: a touch target as tall as they are.
        "#editor-save ~ a": { display: "inline-flex", alignItems: "center", minHeight: "32px", padding: "0 6px", verticalAlign: "middle" },
        "dialog.editor-diff": {
          width: "min(1100px, calc(100vw - 24px))", maxWidth: "none", maxHeight: "calc(100vh - 24px)", padding: "0",
          border: "1px solid var(--line)", borderRadius: "6px", background: "var(--panel)", color: "var(--ink)",
          boxShadow: "0 10px 40px rgba(0, 0, 0, 0.35)",
        },
        "dialog.editor-diff[open]": { display: "flex", flexDirection: "column" },
        "dialog.editor-diff::backdrop": { background: "rgba(15, 20, 27, 0.55)" },
        "dialog.editor-diff h2": { margin: "0", padding: "14px 16px 4px", fontSize: "16px", overflowWrap: "anywhere" },
        "dialog.editor-diff .editor-diff-summary": { margin: "0", padding: "0 16px 10px" },
        "dialog.editor-diff .editor-diff-view": { flex: "1 1 auto", minHeight: "0", overflow: "auto", padding: "0 16px" },
        "dialog.editor-diff .editor-diff-view .cm-editor": { maxHeight: "none" },
        "dialog.editor-diff .editor-diff-view .cm-content, dialog.editor-diff .editor-diff-view .cm-gutter": { minHeight: "0" },
        "dialog.editor-diff .editor-diff-actions": { display: "flex", flexWrap: "wrap", gap: "8px", margin: "0", padding: "12px 16px 14px", borderTop: "1px solid var(--line)" },
        "dialog.editor-diff .editor-diff-actions button": { minHeight: "32px", minWidth: "96px" },
        "@media (max-width: 640px)": {
          "dialog.editor-diff h2": { padding: "12px 12px 4px" },
          "dialog.editor-diff .editor-diff-summary, dialog.editor-diff .editor-diff-view": { paddingLeft: "12px", paddingRight: "12px" },
          "dialog.editor-diff .editor-diff-actions": { padding: "10px 12px 12px" },
          "dialog.editor-diff .editor-diff-actions button": { flex: "1 1 0" },
        },
      })
    );
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function start() {
    const form = document.getElementById("editor-form");
    const ta = document.getElementById("editor-content");
    const list = document.getElementById("editor-errors");
    const button = document.getElementById("editor-validate");
    if (!form || !ta || !list) return;
    const CM = window.UpdraftCM;
    const original = ta.hasAttribute("data-original") ? ta.getAttribute("data-original") : ta.defaultValue;
    const isNew = !!form.querySelector("input[name=new]");
    let editor;
    if (CM) {
      mountStyles(CM);
      editor = codeMirrorEditor(CM, ta, form);
    } else {
      editor = textareaEditor(ta);
    }
    const sync = () => {
      if (CM) ta.value = editor.text();
    };

    // Results: in the list (only when they changed, so that the live region does not repeat
    // itself) and in the editor.
    let shown = JSON.stringify(resultsOf(list));
    function show(result) {
      editor.show(result);
      const key = JSON.stringify(result.valid ? result : { valid: false, errors: result.errors || [] });
      if (key === shown) return;
      shown = key;
      renderResults(list, result);
    }
    const initial = resultsOf(list);
    if (initial) editor.show(initial);
    markFocusable(list);

    const goToItem = (li) => editor.goTo(Number(li.dataset.line), Number(li.dataset.column));
    list.addEventListener("click", (ev) => {
      const li = ev.target.closest("li[data-line]");
      if (li && Number(li.dataset.line) > 0) goToItem(li);
    });
    list.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      const li = ev.target.closest("li[data-line]");
      if (!li || !(Number(li.dataset.line) > 0)) return;
      ev.preventDefault();
      goToItem(li);
    });

    // Validation: at once (the button), or 600 ms after the last change. Each request has a
    // number and the text's version: an answer that is not the newest, or that is about a text
    // changed since, is dropped (the change has a newer check coming).
    const url = (button && button.dataset.validateUrl) || "/editor/validate";
    let timer = 0;
    let seq = 0;
    let version = 0;
    let inflight = null;
    function validate() {
      clearTimeout(timer);
      timer = 0;
      sync();
      const mine = ++seq;
      const at = version;
      if (inflight) inflight.abort();
      inflight = typeof AbortController === "function" ? new AbortController() : null;
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8", Accept: "application/json" },
        body: new URLSearchParams(new FormData(form)).toString(),
        signal: inflight ? inflight.signal : undefined,
      })
        .then((r) => {
          if (!r.ok && !/json/.test(r.headers.get("Content-Type") || "")) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then((res) => {
          if (mine !== seq || at !== version) return;
          inflight = null;
          show(res);
        })
        .catch((err) => {
          if ((err && err.name === "AbortError") || mine !== seq || at !== version) return;
          inflight = null;
          show({ valid: false, errors: [{ line: 0, column: 0, message: "validation failed: reload the page" }] });
        });
    }
    editor.onChange(() => {
      version++;
      clearTimeout(timer);
      timer = setTimeout(validate, DEBOUNCE_MS);
    });
    if (button) button.addEventListener("click", validate);

    // Saving an existing file: first the diff, unless nothing changed.
    let status = null;
    function say(text) {
      if (!status) {
        status = document.createElement("span");
        status.className = "editor-status muted";
        status.setAttribute("role", "status");
        const save = document.getElementById("editor-save");
        const at = save ? save.parentNode : form;
        at.appendChild(status);
      }
      status.textContent = text;
    }
    let dialog = null;
    let diff = null;
    function closeDiff() {
      if (dialog && dialog.open) dialog.close();
    }
    function openDiff(text) {
      if (!dialog) {
        dialog = document.createElement("dialog");
        dialog.className = "editor-diff";
        dialog.id = "editor-diff";
        dialog.setAttribute("aria-labelledby", "editor-diff-title");
        dialog.setAttribute("aria-describedby", "editor-diff-summary");
        const h = document.createElement("h2");
        h.id = "editor-diff-title";
        const summary = document.createElement("p");
        summary.id = "editor-diff-summary";
        summary.className = "editor-diff-summary muted";
        const body = document.createElement("div");
        body.className = "editor-diff-view";
        const actions = document.createElement("p");
        actions.className = "editor-diff-actions";
        const save = document.createElement("button");
        save.type = "button";
        save.id = "editor-diff-save";
        save.textContent = "Save";
        const keep = document.createElement("button");
        keep.type = "button";
        keep.className = "secondary";
        keep.id = "editor-diff-keep";
        keep.textContent = "Keep editing";
        actions.appendChild(save);
        actions.appendChild(keep);
        dialog.appendChild(h);
        dialog.appendChild(summary);
        dialog.appendChild(body);
        dialog.appendChild(actions);
        document.body.appendChild(dialog);
        save.addEventListener("click", () => {
          save.disabled = true;
          closeDiff();
          saveForReal(form, document.getElementById("editor-save"));
          save.disabled = false;
        });
        keep.addEventListener("click", closeDiff);
        dialog.addEventListener("close", () => {
          if (diff) diff.destroy();
          diff = null;
          if (!confirmed) editor.focus();
        });
      }
      const file = form.querySelector("[name=file]");
      const name = file ? file.value : "";
      const h = dialog.querySelector("h2");
      h.textContent = "Save changes" + (name ? " to " : "");
      if (name) {
        const code = document.createElement("span");
        code.className = "mono";
        code.textContent = name;
        h.appendChild(code);
      }
      h.appendChild(document.createTextNode("?"));
      const body = dialog.querySelector(".editor-diff-view");
      body.textContent = "";
      dialog.showModal();
      diff = editor.diff(original, body);
      dialog.querySelector(".editor-diff-summary").textContent =
        plural(diff.removed, "line") + " removed (\u2212, red), " + plural(diff.added, "line") + " added (+, green). Esc or \u201cKeep editing\u201d goes back to the editor.";
      dialog.querySelector("#editor-diff-save").focus();
    }

    form.addEventListener("submit", (ev) => {
      sync();
      if (confirmed || isNew) return;
      const text = ta.value;
      if (text === original) {
        ev.preventDefault();
        say("No changes to save: the text is as it was when the page opened.");
        return;
      }
      if (!CM || !editor.diff || typeof HTMLDialogElement !== "function") return;
      ev.preventDefault();
      if (status) status.textContent = "";
      openDiff(text);
    });
    editor.onChange(() => {
      if (status && status.textContent) status.textContent = "";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
