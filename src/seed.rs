//! `sigmasight seed --demo`: a demo user, two portfolios with positions, and the symbols they
//! hold, so a fresh deployment has something to show. Idempotent: what exists is left alone.

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::auth::{password, users, Role};

/// The demo account's email (a reserved domain: it can never be someone's real address).
pub const DEMO_EMAIL: &str = "demo@example.com";

/// Symbols the demo tracks.
const DEMO_SYMBOLS: &[(&str, &str)] = &[
    ("AAPL", "Apple Inc."),
    ("MSFT", "Microsoft Corporation"),
    ("NVDA", "NVIDIA Corporation"),
    ("BRK.B", "Berkshire Hathaway Inc. Class B"),
    ("SPY", "SPDR S&P 500 ETF Trust"),
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
}

/// Seeds the demo data. `password` is the demo user's password when the user is created; a
/// random one is made when it is `None`.
pub async fn demo(db: &PgPool, password: Option<String>) -> anyhow::Result<Outcome> {
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
    for (symbol, name) in DEMO_SYMBOLS {
        sqlx::query("INSERT INTO symbols (symbol, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(symbol)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    let mut portfolios_created = 0;
    for (name, positions) in DEMO_PORTFOLIOS {
        let created: Option<uuid::Uuid> = sqlx::query_scalar(
            "INSERT INTO portfolios (user_id, name) VALUES ($1, $2)
             ON CONFLICT (user_id, name) DO NOTHING RETURNING id",
        )
        .bind(user.id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        // Positions only go into a portfolio created now, so a re-run never doubles them.
        let Some(portfolio_id) = created else {
            continue;
        };
        portfolios_created += 1;
        for (symbol, quantity, cost, opened) in *positions {
            sqlx::query(
                "INSERT INTO positions (portfolio_id, symbol, quantity, cost_basis, opened_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(portfolio_id)
            .bind(symbol)
            .bind(quantity.parse::<Decimal>()?)
            .bind(cost.parse::<Decimal>()?)
            .bind(opened.parse::<chrono::NaiveDate>()?)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Outcome {
        new_password,
        portfolios_created,
    })
}
