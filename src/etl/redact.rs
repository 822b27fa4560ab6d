//! Keeping API keys out of messages. URLs are never put into messages in the first place; this
//! is the second line: any `apikey=` / `apiKey=` value or bearer token that slips into a text is
//! masked before the text is logged or stored.

/// `text` with the value of every `apikey=` parameter (any case) and every `Bearer` token masked.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    while i < text.len() {
        let rest = &lower[i..];
        let marker = ["apikey=", "bearer "]
            .iter()
            .find(|m| rest.starts_with(**m));
        match marker {
            Some(m) => {
                out.push_str(&text[i..i + m.len()]);
                out.push_str("****");
                i += m.len();
                while i < text.len() && !is_delimiter(text.as_bytes()[i]) {
                    i += 1;
                }
            }
            None => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'&' | b' ' | b'"' | b'\'' | b')' | b'>' | b',' | b'\n' | b'#'
    )
}

/// An error and its causes on one line (`outer: inner`), redacted.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_queries_and_headers_are_masked() {
        let text = "GET https://x/y?symbol=A&apikey=s3cret&from=1 and apiKey=abc, Bearer tok-1";
        let redacted = redact(text);
        assert_eq!(
            redacted,
            "GET https://x/y?symbol=A&apikey=****&from=1 and apiKey=****, Bearer ****"
        );
    }
}
