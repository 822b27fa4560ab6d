//! The settings table: every configuration key declared once, with its default, what it
//! accepts, whether it is a secret, and what it is for.
//!
//! Everything else about a key comes from its entry: which environment variables are read, the
//! built-in defaults, the "expected ..." of an error message, the range an integer is checked
//! against, how `sigmasight config` shows the value, and the configuration tables of README.md
//! and docs/etl.md ([`markdown_table`]). `Config::from_figment` reads each entry by its constant
//! (`PORT`, ...), so a misspelt key does not compile. Each entry is a struct literal with no
//! `..` fallback, so an entry missing a part does not compile either.

use std::fmt::Write as _;

use super::MIN_SECRET_KEY_BYTES;

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The key as the TOML file spells it; the environment spells it in capitals.
    pub key: &'static str,
    /// The value when no source sets one.
    pub default: Default,
    /// What the key accepts.
    pub kind: Kind,
    /// Whether the value is (or holds) a secret: never printed, never quoted in an error.
    pub secret: bool,
    /// Which part of the program the key belongs to (and which documentation lists it).
    pub group: Group,
    /// What the key is for, one line of Markdown: the "meaning" column of the tables.
    pub help: &'static str,
}

/// A key's value when no source sets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// A built-in integer.
    Integer(u64),
    /// A built-in boolean.
    Bool(bool),
    /// A built-in string.
    Text(&'static str),
    /// No value, and none is needed; the text says what happens then ("" when it is plain off).
    Unset(&'static str),
    /// No value: loading fails until a source sets one.
    Required,
}

/// What a key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number from `min` to `max`, both included.
    Integer { min: u64, max: u64, unit: Unit },
    /// `true` or `false`.
    Bool,
    /// One of `values` (as the serde names of the matching enum spell them); `note` is added to
    /// the expectation in parentheses when it is not empty.
    Choice {
        values: &'static [&'static str],
        note: &'static str,
    },
    /// A comma-separated string (or a TOML list) of `items`.
    List { items: &'static str },
    /// Free text that its reader checks; `expected` says what passes.
    Text { expected: &'static str },
    /// An `http://` or `https://` URL with a host, and no credentials or query.
    HttpUrl,
    /// A `postgres://` URL (`DatabaseUrl`).
    DatabaseUrl,
    /// A provider's API key: visible ASCII, no quotes.
    ApiKey,
    /// A token-signing key of at least `MIN_SECRET_KEY_BYTES` bytes.
    SigningKey,
}

/// How an integer's expectation names what it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// "an integer 1-65535".
    Plain,
    /// "a whole number of seconds, 1-3600".
    Seconds,
    /// "a number of connections, 1-1000000".
    Count(&'static str),
}

/// Which part of the program a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The server, the database and the tokens: listed in README.md only.
    Service,
    /// `sigmasight etl`'s providers and limits: listed in README.md and docs/etl.md.
    Etl,
}

impl Kind {
    /// What the key takes, as error messages say it after "expected".
    pub fn expectation(&self) -> String {
        match *self {
            Self::Integer { min, max, unit } => match unit {
                Unit::Plain => format!("an integer {min}-{max}"),
                Unit::Seconds => format!("a whole number of seconds, {min}-{max}"),
                Unit::Count(things) => format!("a number of {things}, {min}-{max}"),
            },
            Self::Bool => "true or false".to_owned(),
            Self::Choice { values, note } => {
                let mut text = match values.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                };
                if !note.is_empty() {
                    let _ = write!(text, " ({note})");
                }
                text
            }
            Self::List { items } => format!("a comma-separated list of {items}"),
            Self::Text { expected } => expected.to_owned(),
            Self::HttpUrl => "an http:// or https:// URL with no query".to_owned(),
            Self::DatabaseUrl => "a postgres:// URL".to_owned(),
            Self::ApiKey => "an API key".to_owned(),
            Self::SigningKey => format!("a secret of at least {MIN_SECRET_KEY_BYTES} bytes"),
        }
    }
}

impl Setting {
    /// The environment variable (`port` → `PORT`).
    pub fn env_name(&self) -> String {
        self.key.to_ascii_uppercase()
    }
}

/// The entry of `key` (as the TOML file spells it), if there is one.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Declares each entry as a constant of its own (what `Config::from_figment` reads it by) and
/// lists them all, in order, in [`SETTINGS`].
macro_rules! settings {
    ($($(#[$meta:meta])* $name:ident = $setting:expr;)*) => {
        $($(#[$meta])* pub const $name: Setting = $setting;)*

        /// Every key, in the order `sigmasight config` and the documentation list them.
        pub static SETTINGS: &[Setting] = &[$($name),*];

        /// Each constant's name with its entry's key, for the test that they agree.
        #[cfg(test)]
        pub(super) const CONSTANT_NAMES: &[(&str, &str)] = &[$((stringify!($name), $name.key)),*];
    };
}

use self::Default::{Bool, Integer, Required, Text, Unset};
use self::Group::{Etl, Service};

// Each `key: "..."` stays on a line of its own, with its `default:` on the next line and its
// `secret:` on a line of its own: scripts/lib/settings.sh reads the keys, defaults and secrets
// from those lines, .railway/check.ts the keys.
settings! {
    DATABASE_URL = Setting {
        key: "database_url",
        default: Required,
        kind: Kind::DatabaseUrl,
        secret: true,
        group: Service,
        help: "`postgres://user:password@host:5432/db`; `sslmode` (`disable`, `prefer`, `require`, \
               `verify-ca`, `verify-full`) and `sslrootcert` are honoured",
    };
    DATABASE_MIGRATION_URL = Setting {
        key: "database_migration_url",
        default: Unset("DATABASE_URL is used"),
        kind: Kind::DatabaseUrl,
        secret: true,
        group: Service,
        help: "the schema owner's URL, used for migrations only",
    };
    DATABASE_POOL_SIZE = Setting {
        key: "database_pool_size",
        default: Integer(10),
        kind: Kind::Integer { min: 1, max: 1000, unit: Unit::Plain },
        secret: false,
        group: Service,
        help: "most pooled connections",
    };
    DATABASE_POOL_TIMEOUT_SECONDS = Setting {
        key: "database_pool_timeout_seconds",
        default: Integer(30),
        kind: Kind::Integer { min: 1, max: 3600, unit: Unit::Seconds },
        secret: false,
        group: Service,
        help: "longest wait for a pooled connection",
    };
    DATABASE_POOL_RECYCLE_SECONDS = Setting {
        key: "database_pool_recycle_seconds",
        default: Integer(1800),
        kind: Kind::Integer { min: 1, max: 86_400, unit: Unit::Seconds },
        secret: false,
        group: Service,
        help: "connections older than this are replaced",
    };
    MIGRATE_ON_START = Setting {
        key: "migrate_on_start",
        default: Bool(true),
        kind: Kind::Bool,
        secret: false,
        group: Service,
        help: "`serve` applies pending migrations at start-up",
    };
    PORT = Setting {
        key: "port",
        default: Integer(8000),
        kind: Kind::Integer { min: 1, max: 65_535, unit: Unit::Plain },
        secret: false,
        group: Service,
        help: "listening port",
    };
    METRICS_PORT = Setting {
        key: "metrics_port",
        default: Unset("no metrics listener"),
        kind: Kind::Integer { min: 1, max: 65_535, unit: Unit::Plain },
        secret: false,
        group: Service,
        help: "port of a second listener serving Prometheus metrics at `/metrics` (keep it \
               private: `docs/operations.md`)",
    };
    CORS_ALLOWED_ORIGINS = Setting {
        key: "cors_allowed_origins",
        default: Text("http://localhost:3000,http://localhost:3005"),
        kind: Kind::List { items: "origins such as https://app.example.com" },
        secret: false,
        group: Service,
        help: "origins a browser may call from (the headers its scripts may send and read: \
               `docs/api.md`)",
    };
    REQUEST_TIMEOUT_SECONDS = Setting {
        key: "request_timeout_seconds",
        default: Integer(30),
        kind: Kind::Integer { min: 1, max: 3600, unit: Unit::Seconds },
        secret: false,
        group: Service,
        help: "a slower request gets a 503 `timeout` error",
    };
    REQUEST_BODY_LIMIT_BYTES = Setting {
        key: "request_body_limit_bytes",
        default: Integer(1024 * 1024),
        kind: Kind::Integer { min: 1, max: 1 << 30, unit: Unit::Count("bytes") },
        secret: false,
        group: Service,
        help: "a larger body gets a 413",
    };
    SHUTDOWN_GRACE_SECONDS = Setting {
        key: "shutdown_grace_seconds",
        default: Integer(25),
        kind: Kind::Integer { min: 0, max: 3600, unit: Unit::Seconds },
        secret: false,
        group: Service,
        help: "time in-flight requests get after SIGTERM",
    };
    // Behind a load balancer, a replica that closes its connections at SIGTERM races the
    // balancer, which may be sending a request on one of them; first the balancer's health checks
    // must take it out (docs/operations.md, "Replicas behind a load balancer").
    SHUTDOWN_DRAIN_SECONDS = Setting {
        key: "shutdown_drain_seconds",
        default: Integer(0),
        kind: Kind::Integer { min: 0, max: 3600, unit: Unit::Seconds },
        secret: false,
        group: Service,
        help: "after SIGTERM, how long readiness answers 503 while requests are still accepted and \
               served (each response closing its connection), before the drain: longer than a \
               load balancer takes to mark the replica down",
    };
    // Slowloris: a client that sends a request's headers a byte at a time holds a connection
    // only this long. Idle keep-alive connections close after it too.
    HEADER_READ_TIMEOUT_SECONDS = Setting {
        key: "header_read_timeout_seconds",
        default: Integer(10),
        kind: Kind::Integer { min: 1, max: 3600, unit: Unit::Seconds },
        secret: false,
        group: Service,
        help: "a connection that has not sent a whole request's headers this long after it could \
               (idle keep-alive included) is closed",
    };
    // Far above what one replica serves (each connection costs a few KiB), far below the file
    // descriptors a container gets.
    MAX_CONNECTIONS = Setting {
        key: "max_connections",
        default: Integer(4096),
        kind: Kind::Integer { min: 1, max: 1_000_000, unit: Unit::Count("connections") },
        secret: false,
        group: Service,
        help: "most connections open at once; more clients wait in the listen backlog",
    };
    TRUSTED_PROXY_HOPS = Setting {
        key: "trusted_proxy_hops",
        default: Integer(0),
        kind: Kind::Integer { min: 0, max: 10, unit: Unit::Count("proxies") },
        secret: false,
        group: Service,
        help: "proxies in front of the service whose forwarding header names the client (login \
               limits); 0 = the connection's peer, headers ignored. Railway: 1, with \
               `CLIENT_ADDRESS_HEADER=x-real-ip`",
    };
    CLIENT_ADDRESS_HEADER = Setting {
        key: "client_address_header",
        default: Text("x-forwarded-for"),
        kind: Kind::Choice {
            values: &["x-forwarded-for", "x-real-ip"],
            note: "x-real-ip only with TRUSTED_PROXY_HOPS=1",
        },
        secret: false,
        group: Service,
        help: "the header those proxies write: `x-forwarded-for` (the entry `TRUSTED_PROXY_HOPS` \
               from the right) or `x-real-ip` (with one hop)",
    };
    PASSWORD_HASH_CONCURRENCY = Setting {
        key: "password_hash_concurrency",
        default: Unset("one per CPU"),
        kind: Kind::Integer { min: 1, max: 1024, unit: Unit::Count("verifications") },
        secret: false,
        group: Service,
        help: "most password verifications at once (argon2id, 19 MiB each)",
    };
    // At ~25 ms a verification on one core, 64 waiting logins are about a second and a half of
    // work on two cores: a client waits that long at most before 503.
    PASSWORD_HASH_QUEUE = Setting {
        key: "password_hash_queue",
        default: Integer(64),
        kind: Kind::Integer { min: 0, max: 100_000, unit: Unit::Count("logins") },
        secret: false,
        group: Service,
        help: "most logins waiting for a verification; more get 503 with `Retry-After`",
    };
    LOG_LEVEL = Setting {
        key: "log_level",
        default: Text("info"),
        kind: Kind::Text {
            expected: "a level (error, warn, info, debug, trace) or directives such as \
                       info,sqlx=warn",
        },
        secret: false,
        group: Service,
        help: "what is logged: one level for everything, or directives per target",
    };
    LOG_FORMAT = Setting {
        key: "log_format",
        default: Text("json"),
        kind: Kind::Choice { values: &["json", "pretty"], note: "" },
        secret: false,
        group: Service,
        help: "how log lines are written: `json`, one object per line, or `pretty`, for a terminal",
    };
    FMP_API_KEY = Setting {
        key: "fmp_api_key",
        default: Unset("FMP is not asked"),
        kind: Kind::ApiKey,
        secret: true,
        group: Etl,
        help: "Financial Modeling Prep's key",
    };
    POLYGON_API_KEY = Setting {
        key: "polygon_api_key",
        default: Unset("Polygon is not asked"),
        kind: Kind::ApiKey,
        secret: true,
        group: Etl,
        help: "Polygon's key",
    };
    FMP_BASE_URL = Setting {
        key: "fmp_base_url",
        default: Text("https://financialmodelingprep.com"),
        kind: Kind::HttpUrl,
        secret: false,
        group: Etl,
        help: "FMP's address; a proxy or a test double may stand in",
    };
    POLYGON_BASE_URL = Setting {
        key: "polygon_base_url",
        default: Text("https://api.polygon.io"),
        kind: Kind::HttpUrl,
        secret: false,
        group: Etl,
        help: "Polygon's address",
    };
    ETL_PRIMARY_PROVIDER = Setting {
        key: "etl_primary_provider",
        default: Text("fmp"),
        kind: Kind::Choice { values: &["fmp", "polygon"], note: "" },
        secret: false,
        group: Etl,
        help: "the provider asked first; the other one is the fallback",
    };
    // The plans' limits: FMP Starter allows 300 calls a minute, Polygon's free plan 5.
    FMP_REQUESTS_PER_MINUTE = Setting {
        key: "fmp_requests_per_minute",
        default: Integer(300),
        kind: Kind::Integer { min: 1, max: 1_000_000, unit: Unit::Count("requests a minute") },
        secret: false,
        group: Etl,
        help: "client-side limit (FMP Starter's)",
    };
    POLYGON_REQUESTS_PER_MINUTE = Setting {
        key: "polygon_requests_per_minute",
        default: Integer(5),
        kind: Kind::Integer { min: 1, max: 1_000_000, unit: Unit::Count("requests a minute") },
        secret: false,
        group: Etl,
        help: "client-side limit (the free plan's)",
    };
    ETL_REQUEST_TIMEOUT_SECONDS = Setting {
        key: "etl_request_timeout_seconds",
        default: Integer(30),
        kind: Kind::Integer { min: 1, max: 600, unit: Unit::Seconds },
        secret: false,
        group: Etl,
        help: "one HTTP request, retries excluded",
    };
    // 50 minutes: a daily cron run finishes in seconds; a backfill that is still going after
    // this records what it could not do instead of overlapping the next day's run.
    ETL_DEADLINE_SECONDS = Setting {
        key: "etl_deadline_seconds",
        default: Integer(3000),
        kind: Kind::Integer { min: 1, max: 86_400, unit: Unit::Seconds },
        secret: false,
        group: Etl,
        help: "the whole run; what is left is recorded as failed",
    };
    ETL_MAX_RETRIES = Setting {
        key: "etl_max_retries",
        default: Integer(5),
        kind: Kind::Integer { min: 0, max: 20, unit: Unit::Count("retries") },
        secret: false,
        group: Etl,
        help: "retries of one request after a transient failure",
    };
    ETL_BATCH_SIZE = Setting {
        key: "etl_batch_size",
        default: Integer(5000),
        kind: Kind::Integer { min: 1, max: 100_000, unit: Unit::Count("bars") },
        secret: false,
        group: Etl,
        help: "bars written per transaction",
    };
    ETL_BENCHMARK_SYMBOLS = Setting {
        key: "etl_benchmark_symbols",
        default: Text("SPY"),
        kind: Kind::List { items: "upper-case symbols such as SPY,QQQ" },
        secret: false,
        group: Etl,
        help: "symbols always fetched, whatever the `symbols` table holds",
    };
    // A month, about 21 trading days: two weeks of failed, skipped or cancelled cron runs are
    // still repaired by the next one, and a newly tracked symbol's first run still costs one
    // request per symbol (or, through Polygon's grouped endpoint, at most some 21 requests: four
    // minutes at 5 a minute). Older history is a deliberate backfill (--from/--to).
    ETL_LOOKBACK_DAYS = Setting {
        key: "etl_lookback_days",
        default: Integer(30),
        kind: Kind::Integer { min: 1, max: 366, unit: Unit::Count("calendar days") },
        secret: false,
        group: Etl,
        help: "how far back, ending with the latest completed trading day, a run without dates \
               looks for each symbol's missing days; older history is a backfill",
    };
    SECRET_KEY = Setting {
        key: "secret_key",
        default: Unset("serve refuses to start"),
        kind: Kind::SigningKey,
        secret: true,
        group: Service,
        help: "signs access tokens; see `docs/auth.md`",
    };
    SECRET_KEY_PREVIOUS = Setting {
        key: "secret_key_previous",
        default: Unset(""),
        kind: Kind::SigningKey,
        secret: true,
        group: Service,
        help: "the key before a rotation: its tokens still verify until they expire",
    };
    // An hour: short enough that a leaked token is soon worthless, long enough that a dashboard
    // session does not log in again every few minutes.
    ACCESS_TOKEN_TTL_SECONDS = Setting {
        key: "access_token_ttl_seconds",
        default: Integer(3600),
        kind: Kind::Integer { min: 60, max: 86_400, unit: Unit::Seconds },
        secret: false,
        group: Service,
        help: "lifetime of an access token",
    };
}

/// The configuration table of README.md (every key, `group` `None`) or of docs/etl.md (the
/// ETL's keys), as Markdown.
pub fn markdown_table(group: Option<Group>) -> String {
    let mut table = String::from("| variable | default | accepts | meaning |\n|---|---|---|---|\n");
    for setting in SETTINGS
        .iter()
        .filter(|s| group.is_none_or(|g| s.group == g))
    {
        let default = match setting.default {
            Integer(n) => n.to_string(),
            Bool(b) => b.to_string(),
            Text(text) => format!("`{text}`"),
            Unset("") => "unset".to_owned(),
            Unset(then) => format!("unset: {then}"),
            Required => "(required)".to_owned(),
        };
        let secret = if setting.secret { " (secret)" } else { "" };
        let _ = writeln!(
            table,
            "| `{}`{secret} | {default} | {} | {} |",
            setting.env_name(),
            setting.kind.expectation(),
            setting.help
        );
    }
    table
}
