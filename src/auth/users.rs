//! Users' addresses as the CLI takes them; the `users` table itself is `db::users`.

/// Whether `email` looks like an address: something, `@`, something with a dot, at most 254
/// bytes, no spaces. Deliverability is not our concern; typos in the CLI are.
pub fn is_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && email.len() <= 254
                && email.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape_only() {
        for good in ["a@b.co", "Alice.Smith+x@example.com"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a b@c.co", "a@b@c.co"] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
