//! Where a form may send the browser afterwards: the one check of every `next` (return-to)
//! value the pages accept — the login page, the pause toggle, any form with a return field.
//!
//! Invariant: [`safe_next`] returns either a same-site path that is also a valid `Location`
//! header, or [`DEFAULT_PAGE`]. A value a browser could read as another site (`//host`,
//! `/\host`, `/<TAB>/host` — browsers drop tabs and newlines from URLs and treat `\` as `/`)
//! or that cannot be a header (CR, LF, DEL, other control characters) never gets through, so
//! no `next` can redirect off-site or make a handler fail.

/// Where a refused (or missing) `next` leads.
pub const DEFAULT_PAGE: &str = "/dags";

/// Longest `next` kept; the pages' own return paths are far shorter.
const MAX_NEXT: usize = 2048;

/// `next` when it is a plain path on this site, else [`DEFAULT_PAGE`]: a single `/` followed
/// by a path character (or nothing), then only visible ASCII — no control character, no space,
/// no backslash and no `//` anywhere. Pages percent-encode what they put in their return paths,
/// so every path they generate passes.
pub fn safe_next(next: &str) -> &str {
    let plain = next.len() <= MAX_NEXT
        && next.starts_with('/')
        && !next.contains("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if plain { next } else { DEFAULT_PAGE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_site_paths_pass() {
        for ok in
            ["/", "/dags/x", "/dags?q=a%2Fb&page=2", "/dags/x/runs/manual__2026-01-01T00%3A00"]
        {
            assert_eq!(safe_next(ok), ok);
        }
    }

    #[test]
    fn hostile_values_go_to_the_default_page() {
        for bad in [
            "",
            "dags",
            "//evil.example",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/x\r\nSet-Cookie: a=b",
            "/x\u{7f}",
            "/x\0",
            "https://evil.example",
            "/ /evil.example",
            "/dags//evil.example",
            "/caf\u{e9}",
            "\\/evil.example",
        ] {
            assert_eq!(safe_next(bad), DEFAULT_PAGE, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT))), DEFAULT_PAGE);
    }
}
