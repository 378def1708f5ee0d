//! Client text as error messages show it: bounded, so that what a client sends (a 60 KB
//! parameter, a 20 KB claim, `1e308`) never comes back, or reaches the log, at full length.

use std::borrow::Cow;

/// Longest client text echoed in an error message, in characters.
const ECHO_CHARS: usize = 48;

/// At most `max_chars` characters of `text`, cut with an ellipsis.
pub fn bounded(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
    }
}

/// Client text as an error message quotes it: debug-quoted, cut to [`ECHO_CHARS`] characters
/// (a 60 KB value must not come back 60 KB long, nor fill the log).
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// A number as an error message shows it: plainly, or in exponent form when large or tiny
/// (`1e308` is not written out as 309 digits).
pub fn number(value: f64) -> String {
    if value == 0.0 || (1e-6..1e9).contains(&value.abs()) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_text_and_numbers_stay_short() {
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "x".repeat(60_000);
        let echoed = quote(&long);
        assert!(
            echoed.len() < 80 && echoed.ends_with("(60000 bytes)"),
            "{echoed}"
        );
        assert_eq!(
            quote(&"é".repeat(100))
                .chars()
                .filter(|&c| c == 'é')
                .count(),
            48
        );
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(1e-300), "1e-300");
    }
}
