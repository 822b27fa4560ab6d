//! `sigmasight seed --demo`: a demo user, two portfolios with positions, the symbols they hold,
//! and a year of synthetic daily bars for those symbols ([`bars`]), so a fresh deployment has
//! something to show. Idempotent: what exists is left alone.

pub mod bars;

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::auth::{password, Role};
use crate::db::portfolios::{self, PositionValues};
use crate::db::{symbols, users};

/// The demo account's email (a reserved domain: it can never be someone's real address).
pub const DEMO_EMAIL: &str = "demo@example.com";

/// A symbol the demo tracks, and what its synthetic bars look like.
#[derive(Debug)]
pub struct DemoSymbol {
    /// The ticker.
    pub symbol: &'static str,
    /// Its name in `symbols`.
    pub name: &'static str,
    /// The synthetic price level on the walk's first day (2020-01-02), in whole dollars.
    pub level: u32,
    /// The typical daily volume of its synthetic bars.
    pub volume: i64,
}

/// Symbols the demo tracks.
pub const DEMO_SYMBOLS: &[DemoSymbol] = &[
    DemoSymbol {
        symbol: "AAPL",
        name: "Apple Inc.",
        level: 75,
        volume: 90_000_000,
    },
    DemoSymbol {
        symbol: "MSFT",
        name: "Microsoft Corporation",
        level: 160,
        volume: 25_000_000,
    },
    DemoSymbol {
        symbol: "NVDA",
        name: "NVIDIA Corporation",
        level: 6,
        volume: 400_000_000,
    },
    DemoSymbol {
        symbol: "BRK.B",
        name: "Berkshire Hathaway Inc. Class B",
        level: 225,
        volume: 4_000_000,
    },
    DemoSymbol {
        symbol: "SPY",
        name: "SPDR S&P 500 ETF Trust",
        level: 325,
        volume: 70_000_000,
    },
];

/// A demo position: symbol, quantity, cost per share, opening date (decimals as text, exact).
type DemoPosition = (&'static str, &'static str, &'static str, &'static str);

/// Portfolios and their positions.
const DEMO_PORTFOLIOS: &[(&str, &[DemoPosition])] = &[
    (
        "Demo: Core",
        &[
            ("AAPL", "10", "150.25", "2024-01-02"),
            ("MSFT", "5", "310.10", "2024-01-02"),
            ("SPY", "8.5", "420.000001", "2024-02-01"),
        ],
    ),
    (
        "Demo: Growth",
        &[
            ("NVDA", "12.5", "95.123456", "2024-03-15"),
            ("BRK.B", "3", "360.5", "2024-03-15"),
        ],
    ),
];

/// What the seed did.
#[derive(Debug)]
pub struct Outcome {
    /// The demo user's password if the user was created now (it is shown once, never stored
    /// in clear); `None` if the user already existed.
    pub new_password: Option<String>,
    /// Portfolios created by this run.
    pub portfolios_created: usize,
    /// Synthetic bars written by this run (none where a bar was already stored).
    pub bars_written: u64,
    /// The first and last day of the synthetic bars.
    pub bars_window: (chrono::NaiveDate, chrono::NaiveDate),
}

/// Seeds the demo data, with the year of synthetic bars that ends with the latest trading day
/// completed at `now`. `password` is the demo user's password when the user is created; a
/// random one is made when it is `None`.
pub async fn demo(
    db: &PgPool,
    password: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Outcome> {
    let new_password = match users::by_email(db, DEMO_EMAIL).await? {
        Some(_) => None,
        None => {
            // 128 bits from the OS generator, as 32 hex digits: typed once, then changed.
            let password = password.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            let clear = password.clone();
            let hash = tokio::task::spawn_blocking(move || password::hash(&clear)).await??;
            match users::create(db, DEMO_EMAIL, &hash, Role::User).await {
                Ok(_) => Some(password),
                // Another seed won the race; its password stands.
                Err(users::CreateError::Duplicate) => None,
                Err(users::CreateError::Database(e)) => return Err(e.into()),
            }
        }
    };
    let user = users::by_email(db, DEMO_EMAIL)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo user vanished while seeding"))?;

    let mut tx = db.begin().await?;
    for symbol in DEMO_SYMBOLS {
        symbols::create_if_missing(&mut *tx, symbol.symbol, symbol.name).await?;
    }
    let mut portfolios_created = 0;
    for (name, positions) in DEMO_PORTFOLIOS {
        let created = portfolios::create_if_missing(&mut *tx, user.id, name).await?;
        // Positions only go into a portfolio created now, so a re-run never doubles them.
        let Some(portfolio_id) = created else {
            continue;
        };
        portfolios_created += 1;
        for (symbol, quantity, cost, opened) in *positions {
            let values = PositionValues {
                symbol,
                quantity: quantity.parse::<Decimal>()?,
                cost_basis: cost.parse::<Decimal>()?,
                opened_at: opened.parse::<chrono::NaiveDate>()?,
            };
            portfolios::add_position(&mut *tx, portfolio_id, values).await?;
        }
    }
    tx.commit().await?;
    let bars_written = bars::write(db, now).await?;
    Ok(Outcome {
        new_password,
        portfolios_created,
        bars_written,
        bars_window: bars::window(now),
    })
}
