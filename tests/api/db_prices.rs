//! `db::prices::bars`, the unchecked fast path of `GET /api/v1/prices/{symbol}`, reads exactly
//! what the compile-time-checked reading of the same `bars.sql` reads.

use rust_decimal::Decimal;
use sigmasight::db::prices::{self, write, BarText};
use sigmasight::etl::validate::Bar;
use sqlx::postgres::PgPoolOptions;

use crate::etl::d;
use crate::helpers::migrated_database;

fn bar(date: &str, cents: i64, adj_close: bool) -> (Bar, &'static str) {
    let price = Decimal::new(cents, 2);
    let bar = Bar {
        symbol: "BRK.B".to_owned(),
        date: d(date),
        open: price,
        high: price + Decimal::ONE,
        low: price - Decimal::ONE,
        close: price,
        adj_close: adj_close.then(|| Decimal::new(cents * 10 + 5, 3)),
        volume: cents * 7,
    };
    (bar, "fmp")
}

#[tokio::test]
async fn the_fast_bars_path_reads_what_the_checked_query_reads() {
    let url = migrated_database().await;
    let db = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let bars = [
        bar("2025-01-02", 18_744, true),
        bar("2025-01-03", 18_800, false),
        bar("2025-01-06", 100, true),
        bar("2025-01-07", 999_999, false),
    ];
    write::upsert(&db, &bars).await.unwrap();
    let (start, end) = (d("2025-01-03"), d("2025-12-31"));

    let rows = prices::bars(&db, "BRK.B", start, end, 2).await.unwrap();
    let fast: Vec<BarText<'_>> = rows.iter().map(|r| BarText::from_row(r).unwrap()).collect();
    let checked = prices::bars_checked(&db, "BRK.B", start, end, 2)
        .await
        .unwrap();

    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    assert_eq!(fast.len(), 2, "the limit keeps the most recent bars");
    assert_eq!(fast.len(), checked.len());
    for (fast, checked) in fast.iter().zip(&checked) {
        assert_eq!(fast.date, checked.date);
        assert_eq!(text(fast.open), checked.open);
        assert_eq!(text(fast.high), checked.high);
        assert_eq!(text(fast.low), checked.low);
        assert_eq!(text(fast.close), checked.close);
        assert_eq!(fast.adj_close.map(text), checked.adj_close);
        assert_eq!(fast.volume, checked.volume);
        assert_eq!(
            fast.updated_at_micros,
            checked.updated_at.timestamp_micros()
        );
    }
    assert_eq!(checked[0].date, d("2025-01-06"), "oldest first");
    assert_eq!(checked[0].open, "1.000000");
}
