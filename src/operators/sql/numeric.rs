//! PostgreSQL `NUMERIC` in its binary wire form -> the exact decimal text. sqlx decodes it only
//! into `rust_decimal` or `bigdecimal`, crates this project does not otherwise need; the format
//! is small and fixed (PostgreSQL's `numeric_send`): four 16-bit header words, then base-10000
//! digits.
//!
//! Invariant: the text is exact — every digit the server sent, the scale it gave — or an error.

/// The decimal text of a binary NUMERIC: `-12.50`, `0`, `NaN`, `Infinity`, `-Infinity`.
pub(super) fn pg_numeric_text(b: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<u16, String> {
        b.get(2 * i..2 * i + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| "truncated NUMERIC".to_string())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        other => return Err(format!("NUMERIC with sign word {other:#x}")),
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Result<_, _>>()?;
    // Integer part: base-10000 groups 0..=weight.
    let mut int = String::new();
    for g in 0..=weight.max(-1) {
        let d = digits.get(g as usize).copied().unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int = d.to_string();
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    // Fraction: groups after the weight, cut to the display scale.
    let mut frac = String::new();
    let mut g = weight + 1;
    while frac.len() < dscale {
        let d = if g < 0 { 0 } else { digits.get(g as usize).copied().unwrap_or(0) };
        frac.push_str(&format!("{d:04}"));
        g += 1;
    }
    frac.truncate(dscale);
    let neg = sign == 0x4000 && (int != "0" || frac.chars().any(|c| c != '0'));
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&int);
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::pg_numeric_text;

    fn wire(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_wire_forms_to_text() {
        let cases: &[(Vec<u8>, &str)] = &[
            (wire(0, 0, 0, 0, &[]), "0"),
            (wire(0, 0, 0, 2, &[]), "0.00"),
            (wire(2, 0, 0, 2, &[12, 5000]), "12.50"),
            (wire(2, 0, 0x4000, 2, &[12, 5000]), "-12.50"),
            (wire(3, 1, 0, 4, &[1, 2345, 6789]), "12345.6789"),
            (wire(1, -1, 0, 5, &[12]), "0.00120"),
            (wire(1, -2, 0, 8, &[1234]), "0.00001234"),
            (wire(1, 2, 0, 0, &[7]), "700000000"),
            (wire(0, 0, 0xC000, 0, &[]), "NaN"),
        ];
        for (bytes, want) in cases {
            assert_eq!(pg_numeric_text(bytes).unwrap(), *want);
        }
        assert!(pg_numeric_text(&[0, 1]).is_err());
    }
}
