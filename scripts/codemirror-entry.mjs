// Entry of templates/static/codemirror.js, bundled by scripts/codemirror.sh (esbuild, one
// minified IIFE). It exposes window.UpdraftCM: the CodeMirror 6 pieces that
// templates/static/editor.js puts together. Only what is listed here ends up in the bundle
// (esbuild drops the rest), so add a name here, rerun the script, and commit both files.
// Not basicSetup (from the codemirror package): it brings autocompletion and folding, which
// the DAG editor does not use, for about 30 KB more.
import {
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  drawSelection,
  dropCursor,
  placeholder,
} from "@codemirror/view";
import { EditorState, EditorSelection, Compartment } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import {
  syntaxHighlighting,
  HighlightStyle,
  bracketMatching,
  indentOnInput,
  indentUnit,
} from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { search, searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { setDiagnostics, lintGutter, lintKeymap } from "@codemirror/lint";
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { unifiedMergeView, getChunks } from "@codemirror/merge";
import { yaml } from "@codemirror/lang-yaml";
import { StyleModule } from "style-mod";

window.UpdraftCM = {
  // @codemirror/view
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  drawSelection,
  dropCursor,
  placeholder,
  // @codemirror/state
  EditorState,
  EditorSelection,
  Compartment,
  // @codemirror/commands
  defaultKeymap,
  history,
  historyKeymap,
  indentWithTab,
  // @codemirror/language and @lezer/highlight
  syntaxHighlighting,
  HighlightStyle,
  bracketMatching,
  indentOnInput,
  indentUnit,
  tags,
  // @codemirror/search
  search,
  searchKeymap,
  highlightSelectionMatches,
  // @codemirror/lint
  setDiagnostics,
  lintGutter,
  lintKeymap,
  // @codemirror/autocomplete (brackets and quotes only)
  closeBrackets,
  closeBracketsKeymap,
  // @codemirror/merge
  unifiedMergeView,
  getChunks,
  // @codemirror/lang-yaml
  yaml,
  // style-mod (CodeMirror's own): page styles of the glue, mounted as constructed
  // stylesheets, so that no CSS file has to change with the editor
  StyleModule,
};
