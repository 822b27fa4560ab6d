//! A PostgreSQL URL that never shows its password: in `Debug`, in `sigmasight config`, or in an
//! error message.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use url::Url;

const MASK: &str = "****";

/// A validated `postgres://` URL. `sslmode` and `sslrootcert` in the query are honoured by
/// [`DatabaseUrl::connect_options`].
#[derive(Clone)]
pub struct DatabaseUrl {
    raw: String,
    options: PgConnectOptions,
}

impl DatabaseUrl {
    /// Parses and validates a URL. The error never contains the password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "the scheme is \"{}\", not postgres or postgresql",
                url.scheme()
            ));
        }
        // sqlx reads the CA file only when it connects; a typo should stop the program now,
        // with the file named, not fail every connection later.
        if let Some((_, path)) = url.query_pairs().find(|(k, _)| k == "sslrootcert") {
            std::fs::metadata(path.as_ref()).map_err(|e| {
                format!("naming an sslrootcert file \"{path}\" that cannot be read ({e})")
            })?;
        }
        let options = PgConnectOptions::from_str(raw)
            .map_err(|e| scrub(&e.to_string(), url.password()))?
            .application_name("sigmasight");
        Ok(Self {
            raw: raw.to_owned(),
            options,
        })
    }

    /// Connection options for sqlx, TLS settings included.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// The URL as given, password included: only for handing to a database client.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with its password (in the user-info part or a `password=` parameter) masked.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

/// Masks the password of a database URL; a string that is not a URL is masked whole.
pub fn redact(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return MASK.to_owned();
    };
    if url.password().is_some() && url.set_password(Some(MASK)).is_err() {
        return MASK.to_owned();
    }
    let has_secret_param = url.query_pairs().any(|(k, _)| is_secret_param(&k));
    if has_secret_param {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn is_secret_param(key: &str) -> bool {
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword")
}

fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => message.replace(p, MASK),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_masks_the_user_info_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cr3t@db:5432/app?sslmode=require").unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://app:****@db:5432/app?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cr3t"));
    }

    #[test]
    fn redacted_masks_a_password_query_parameter() {
        let redacted = redact("postgres://db/app?user=app&password=s3cr3t");
        assert!(!redacted.contains("s3cr3t"), "{redacted}");
        assert!(redacted.contains("user=app"));
    }

    #[test]
    fn parse_rejects_other_schemes_and_unknown_sslmodes_without_echoing_the_password() {
        assert!(DatabaseUrl::parse("mysql://u:p@h/db").is_err());
        let err = DatabaseUrl::parse("postgres://u:hunter22@h/db?sslmode=sometimes").unwrap_err();
        assert!(!err.contains("hunter22"), "{err}");
    }

    #[test]
    fn an_unreadable_sslrootcert_is_refused_naming_the_file() {
        let err = DatabaseUrl::parse(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap_err();
        assert!(
            err.contains("\"/nonexistent/ca.pem\" that cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn parse_accepts_every_libpq_sslmode() {
        for mode in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let url = format!("postgres://u@h/db?sslmode={mode}");
            assert!(DatabaseUrl::parse(&url).is_ok(), "{mode}");
        }
    }
}
