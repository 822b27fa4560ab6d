-- The most recent $4 bars of symbol $1 from $2 to $3 (both included), by the primary key, then
-- put in date order; prices as text, the digits the API sends. `scripts/bench.sh` runs this
-- same file under pgbench as the ceiling of `GET /api/v1/prices/{symbol}`.
SELECT * FROM (
    SELECT symbol, date, open::text, high::text, low::text, close::text, adj_close::text,
           volume, updated_at
    FROM daily_prices
    WHERE symbol = $1 AND date BETWEEN $2 AND $3
    ORDER BY date DESC
    LIMIT $4
) recent ORDER BY date
