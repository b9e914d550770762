//! Tests of the shell escaper: the exact text written in each quoting state, the spots it
//! refuses, and a round trip through real bash for every hostile value in every state.

use super::*;

/// The escaped command for `template` with `value` at each `{}`.
fn render(template: &str, value: &str) -> Result<String, String> {
    let mut pieces = Vec::new();
    let mut parts = template.split("{}");
    if let Some(first) = parts.next() {
        pieces.push(Piece::Code(first));
    }
    for part in parts {
        pieces.push(Piece::Value(value.to_string()));
        pieces.push(Piece::Code(part));
    }
    escape(&pieces)
}

#[test]
fn each_quoting_state_has_its_form() {
    let table: &[(&str, &str, &str)] = &[
        // Unquoted: one single-quoted word.
        ("echo {}", "world", "echo 'world'"),
        ("echo {}", "", "echo ''"),
        ("echo {}", "it's", r"echo 'it'\''s'"),
        ("awk -v n={} 'BEGIN {}'", "1; id", "awk -v n='1; id' 'BEGIN 1; id'"),
        ("echo {}", "a\nb", "echo 'a\nb'"),
        ("echo {}", "名前 ✓", "echo '名前 ✓'"),
        ("echo {}{}", "x", "echo 'x''x'"),
        // Inside single quotes.
        ("echo '{}'", "it's", r"echo 'it'\''s'"),
        ("echo '{}'", "$(id) `id` \\ \"", "echo '$(id) `id` \\ \"'"),
        // Inside double quotes.
        ("echo \"hello {}\"", "world", "echo \"hello world\""),
        ("echo \"{}\"", "\"; id; \"", r#"echo "\"; id; \"""#),
        ("echo \"{}\"", "$(id) `id` \\ ! '", r#"echo "\$(id) \`id\` \\ ! '""#),
        ("echo \"{}\"", "", "echo \"\""),
        // ANSI-C quotes.
        ("echo $'{}'", r"a'\b", r"echo $'a\'\\b'"),
        // Substitutions are unquoted code, even inside double quotes.
        ("echo $(cat {})", "f g", "echo $(cat 'f g')"),
        ("echo \"$(cat {})\"", "f g", "echo \"$(cat 'f g')\""),
        ("echo \"$(echo \"{}\")\"", "$x", r#"echo "$(echo "\$x")""#),
        ("diff <(sort {}) x", "a b", "diff <(sort 'a b') x"),
        ("echo $( (echo {}) )", "a", "echo $( (echo 'a') )"),
        ("echo \"$(echo ')')\" {}", "a", "echo \"$(echo ')')\" 'a'"),
        // Backticks: the inner form, escaped once more for the backtick layer.
        ("echo `cat {}`", "a\\b$`", r"echo `cat 'a\\b\$\`'`"),
        ("echo \"`echo {}`\"", "a\"b", r#"echo "`echo 'a\"b'`""#),
        // Comments: a newline would end them.
        ("# note {}\necho", "a\nid", "# note a id\necho"),
        ("echo a#{}", "b", "echo a#'b'"),
        ("x=$(#c {}\necho y)", "a\nid", "x=$(#c a id\necho y)"),
        ("x=`#c {}\necho y`", "a\nid", "x=`#c a id\necho y`"),
        ("echo a \\\n#b {}\necho", "a\nid", "echo a \\\n#b a id\necho"),
        // Here-documents.
        ("cat <<EOF\n{}\nEOF\n", "$HOME `x` \\ \"", "cat <<EOF\n\\$HOME \\`x\\` \\\\ \"\nEOF\n"),
        ("cat <<'EOF'\n{}\nEOF\n", "$HOME `x`", "cat <<'EOF'\n$HOME `x`\nEOF\n"),
        ("cat <<-EOF\n\t{}\n\tEOF\necho {}", "a", "cat <<-EOF\n\ta\n\tEOF\necho 'a'"),
        ("cat <<EOF | wc\n{}\nEOF\necho {}", "a", "cat <<EOF | wc\na\nEOF\necho 'a'"),
        ("cat <<<{}", "a b", "cat <<<'a b'"),
        ("cat <<EOF\n$(echo {})\nEOF\n", "a b", "cat <<EOF\n$(echo 'a b')\nEOF\n"),
        // `\<newline>` joins body lines before the delimiter check.
        ("cat <<EOF\nx\\\nEOF\n{}\nEOF\n", "$x", "cat <<EOF\nx\\\nEOF\n\\$x\nEOF\n"),
        // Arithmetic takes integers only.
        ("echo $(( {} + 1 ))", "-41", "echo $(( -41 + 1 ))"),
        ("(( n = {} ))", "7", "(( n = 7 ))"),
        ("echo $(( ({}) * 2 )) {}", "3", "echo $(( (3) * 2 )) '3'"),
        // Spots bash evaluates as arithmetic take integers, or values that cannot run anything.
        ("[[ {} -gt 5 ]] && echo {}", "7", "[[ '7' -gt 5 ]] && echo '7'"),
        ("[[ $x == {} ]]", "a b", "[[ $x == 'a b' ]]"),
        ("arr[{}]=1", "3", "arr[3]=1"),
        ("let x={}; echo {}", "5", "let x='5'; echo '5'"),
        ("echo {}[x] {}", "a", "echo 'a'[x] 'a'"),
        // Right after a backslash the value's first character is the quoted one.
        ("echo \\{}", "$x y", r"echo \$'x y'"),
        ("echo \\{}", "a", r"echo \a"),
        ("echo \\{}", "", r"echo \"),
        ("echo \"\\{}\"", "$x", r#"echo "\$x""#),
        ("echo \"\\{}\"", "ab$", r#"echo "\ab\$""#),
        // Closed constructs leave the spot after them unquoted again.
        ("echo ${HOME} \"${x:-'}'}\" {}", "a", "echo ${HOME} \"${x:-'}'}\" 'a'"),
        ("echo $'it\\'s' {}", "a", "echo $'it\\'s' 'a'"),
        ("echo \\' {}", "a", "echo \\' 'a'"),
        ("x=\"a\\\"\" {}", "a", "x=\"a\\\"\" 'a'"),
    ];
    for (template, value, expected) in table {
        let got = render(template, value).unwrap_or_else(|e| panic!("{template:?}: {e}"));
        assert_eq!(&got, expected, "{template:?} with {value:?}");
    }
}

#[test]
fn spots_of_unknown_state_are_refused() {
    let table: &[(&str, &str, &str)] = &[
        ("echo ${x:-{}}", "a", "inside `${...}`"),
        ("echo ${}", "a", "right after `$`"),
        ("echo \"${}\"", "a", "right after `$`"),
        ("cat <<{}\nx\n", "EOF", "delimiter"),
        ("cat << {}\nx\n", "EOF", "delimiter"),
        ("cat <<EOF\n{}\nEOF\n", "x\nEOF\nid", "end the here-document early"),
        ("cat <<EOF\nE{}\nEOF\n", "OF", "end the here-document early"),
        ("cat <<'EOF'\n{}\nEOF\n", "EOF", "end the here-document early"),
        ("echo $(( {} ))", "1; id", "only an integer"),
        ("echo $(( {} ))", "", "only an integer"),
        ("echo $(case x in a) echo {} ;; esac)", "a", "`case`"),
        ("echo `echo \\`{}\\``", "a", "nested backticks"),
        ("echo `echo \\{}`", "a", "backticks"),
        ("echo \"`echo \"{}\"`\"", "a", "double quotes inside backticks"),
        ("echo \\{}", "\nid", "newline"),
        ("[[ {} -gt 5 ]]", "a[$(id)]", "as arithmetic"),
        ("[[ \"{}\" -eq 5 ]]", "a[`id`]", "as arithmetic"),
        ("arr[{}]=1", "$(id)", "an array subscript takes only an integer"),
        ("let x={}", "a[$(id)]", "`let` takes only an integer"),
        ("echo $'\\{}'", "a", "after `\\`"),
    ];
    for (template, value, expected) in table {
        match render(template, value) {
            Err(e) => assert!(e.contains(expected), "{template:?}: {e}"),
            Ok(out) => panic!("{template:?} with {value:?} gave {out:?}"),
        }
    }
}

#[test]
fn text_without_values_is_returned_as_written() {
    let odd = "echo ${x:-$(case a in a) b;; esac)} `a \\` b` <<EOF\n\"'\nEOF\n$(( ))";
    assert_eq!(escape(&[Piece::Code(odd)]).as_deref(), Ok(odd));
}

/// Values that try to leave their spot. `MARKER` is a path that must never be created.
const HOSTILE: &[&str] = &[
    "\"; touch MARKER; \"",
    "'; touch MARKER; '",
    "$(touch MARKER)",
    "`touch MARKER`",
    "a\ntouch MARKER\n",
    "\\",
    "a\\",
    "\\\"; touch MARKER; #",
    "'\\''; touch MARKER; '\\''",
    "${IFS}$((1+1))${x:-y}",
    "!! !$ ~ * ? [a] {a,b}",
    "\t tab and  spaces ",
    "EOF",
    "",
    "ünïcødé ✓ 名前",
    "\r\n$'\\x41'",
];

/// A command printing `{}` back, and what bash prints for a value.
type RoundTrip = (&'static str, fn(&str) -> String);

/// Commands that print `{}` back in each state.
fn round_trips() -> Vec<RoundTrip> {
    // Command substitution drops trailing newlines.
    fn subst(v: &str) -> String {
        v.trim_end_matches('\n').to_string()
    }
    vec![
        ("printf '%s' {}", |v| v.to_string()),
        ("printf '%s' '{}'", |v| v.to_string()),
        ("printf '%s' \"{}\"", |v| v.to_string()),
        ("printf '%s' \"<{}>\"", |v| format!("<{v}>")),
        ("printf '%s' x{}y", |v| format!("x{v}y")),
        ("printf '%s' $'{}'", |v| v.to_string()),
        ("printf '%s' \"$(printf '%s' {})\"", subst),
        ("printf '%s' \"$(printf '%s' \"{}\")\"", subst),
        ("printf '%s' \"`printf '%s' {}`\"", subst),
        ("cat <<EOF\n{}\nEOF", |v| format!("{v}\n")),
        ("cat <<'EOF'\n{}\nEOF", |v| format!("{v}\n")),
        ("cat <<EOF\n$(printf '%s' {})\nEOF", |v| format!("{}\n", subst(v))),
        ("# {}\nprintf ok", |_| "ok".to_string()),
        ("x=$(#{}\nprintf ok); printf '%s' \"$x\"", |_| "ok".to_string()),
        ("printf '%s' a \\\n#{}\n", |_| "a".to_string()),
        ("cat <<EOF\nx\\\nEOF\n{}\nEOF", |v| format!("xEOF\n{v}\n")),
        ("printf '%s' \"\\{}\"", |v| {
            if v.starts_with(['$', '`', '"', '\\']) { v.to_string() } else { format!("\\{v}") }
        }),
    ]
}

#[test]
fn hostile_values_round_trip_through_bash() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    for value in HOSTILE {
        let value = value.replace("MARKER", &marker.display().to_string());
        for (template, expected) in round_trips() {
            if value.is_empty() && template.contains("\\{}") {
                // Nothing follows the template's backslash, which then quotes its `"`.
                continue;
            }
            let command = match render(template, &value) {
                Ok(c) => c,
                // Only the here-document delimiter itself may be refused.
                Err(e) if value == "EOF" && e.contains("here-document") => continue,
                Err(e) => panic!("{template:?} with {value:?}: {e}"),
            };
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(&command)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(!marker.exists(), "{template:?} with {value:?} ran a command: {command}");
            assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
            let printed = String::from_utf8_lossy(&out.stdout);
            assert_eq!(printed, expected(&value), "{template:?} with {value:?}: {command}");
        }
    }
}
