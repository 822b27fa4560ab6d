//! The loader's batch write (`db::prices::write::upsert`) against a real Postgres: new bars go in by
//! `COPY`, changed ones by `UPDATE`, unchanged ones are left alone, and a bar stored by someone
//! else between the batch's probe and its `COPY` is updated, not lost.

use std::time::Duration;

use rust_decimal::Decimal;
use sigmasight::db::prices::write as load;
use sigmasight::db::prices::Counts;
use sigmasight::etl::validate::Bar;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use crate::etl::d;
use crate::helpers::{connect, migrated_database};

fn bar(symbol: &str, date: &str, close: i64) -> Bar {
    Bar {
        symbol: symbol.to_string(),
        date: d(date),
        open: Decimal::new(close, 0),
        high: Decimal::new(close + 1, 0),
        low: Decimal::new(close - 1, 0),
        close: Decimal::new(close, 0),
        adj_close: (close % 2 == 0).then(|| Decimal::new(close * 10 + 5, 1)),
        volume: close * 1000,
    }
}

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap()
}

/// Every stored row, `updated_at` included, as text.
async fn rows(db: &PgPool) -> Vec<(String, String, String, String, String)> {
    sqlx::query_as(
        "SELECT symbol, date::text, close::text || '/' || coalesce(adj_close::text, 'null') \
                || '/' || volume, source, updated_at::text
           FROM daily_prices ORDER BY symbol, date",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn new_changed_and_unchanged_bars_are_counted_and_unchanged_rows_keep_updated_at() {
    let url = migrated_database().await;
    let db = pool(&url).await;
    let first: Vec<_> = [
        bar("AAA", "2025-01-13", 10),
        bar("AAA", "2025-01-14", 11),
        bar("BBB", "2025-01-14", 20),
    ]
    .into_iter()
    .map(|b| (b, "fmp"))
    .collect();
    let counts = load::upsert(&db, &first).await.unwrap();
    assert_eq!(
        counts,
        Counts {
            inserted: 3,
            updated: 0,
            unchanged: 0
        }
    );
    let before = rows(&db).await;
    assert_eq!(before[0].2, "10.000000/10.500000/10000", "{before:?}");
    assert_eq!(before[1].2, "11.000000/null/11000", "{before:?}");
    tokio::time::sleep(Duration::from_millis(20)).await;

    // AAA 13th unchanged; AAA 14th changed (close and source); BBB unchanged; CCC new.
    let second = vec![
        (bar("AAA", "2025-01-13", 10), "fmp"),
        (bar("AAA", "2025-01-14", 12), "polygon"),
        (bar("BBB", "2025-01-14", 20), "fmp"),
        (bar("CCC", "2025-01-14", 30), "fmp"),
    ];
    let counts = load::upsert(&db, &second).await.unwrap();
    assert_eq!(
        counts,
        Counts {
            inserted: 1,
            updated: 1,
            unchanged: 2
        }
    );
    let after = rows(&db).await;
    assert_eq!(after.len(), 4, "{after:?}");
    assert_eq!(after[0], before[0], "an unchanged row was written");
    assert_eq!(after[2], before[2], "an unchanged row was written");
    assert_eq!(after[1].2, "12.000000/12.500000/12000");
    assert_eq!(after[1].3, "polygon");
    assert_ne!(
        after[1].4, before[1].4,
        "a changed row keeps its old updated_at"
    );
    assert_eq!((after[3].0.as_str(), after[3].3.as_str()), ("CCC", "fmp"));

    // The same batch again: nothing to write at all.
    let counts = load::upsert(&db, &second).await.unwrap();
    assert_eq!(
        counts,
        Counts {
            inserted: 0,
            updated: 0,
            unchanged: 4
        }
    );
    assert_eq!(rows(&db).await, after);
}

#[tokio::test]
async fn a_bar_stored_between_the_probe_and_the_copy_is_updated_and_the_batch_lands() {
    let url = migrated_database().await;
    let db = pool(&url).await;
    // Another writer (a demo seed, say) inserts XXX on the 14th and has not committed yet: the
    // batch's probe cannot see the row, and its COPY waits on the primary key.
    let mut other = connect(&url).await;
    other.execute("BEGIN").await.unwrap();
    other
        .execute(
            "INSERT INTO daily_prices (symbol, date, open, high, low, close, volume, source)
             VALUES ('XXX', '2025-01-14', 1, 1, 1, 1, 1, 'demo')",
        )
        .await
        .unwrap();
    let batch = vec![
        (bar("XXX", "2025-01-14", 40), "fmp"),
        (bar("YYY", "2025-01-14", 50), "fmp"),
    ];
    let writer = {
        let db = db.clone();
        tokio::spawn(async move { load::upsert(&db, &batch).await })
    };
    let mut watcher = connect(&url).await;
    let mut waited = false;
    for _ in 0..200 {
        let (waiting,): (bool,) = sqlx::query_as(
            "SELECT count(*) > 0 FROM pg_stat_activity
              WHERE query LIKE 'COPY daily_prices%' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        waited,
        "the batch's COPY never waited on the other writer's row"
    );
    other.execute("COMMIT").await.unwrap();

    let counts = writer.await.unwrap().unwrap();
    assert_eq!(
        counts,
        Counts {
            inserted: 1,
            updated: 1,
            unchanged: 0
        }
    );
    let stored = rows(&db).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(
        (
            stored[0].0.as_str(),
            stored[0].2.as_str(),
            stored[0].3.as_str()
        ),
        ("XXX", "40.000000/40.500000/40000", "fmp"),
        "the other writer's row was not replaced by the batch's bar"
    );
    assert_eq!(
        (stored[1].0.as_str(), stored[1].2.as_str()),
        ("YYY", "50.000000/50.500000/50000")
    );
}
