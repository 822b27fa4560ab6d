-- The tracked universe the API manages: every active symbol here gets its daily bar from the
-- ETL (`sigmasight etl`), together with the configured benchmark symbols (ETL_BENCHMARK_SYMBOLS)
-- and, once portfolios exist, the symbols they hold.
--
-- A symbol is deactivated rather than deleted: its history in `daily_prices` stays, it is just
-- no longer fetched.
CREATE TABLE symbols (
    -- The same spelling rule as `daily_prices.symbol`, so every symbol here can be stored there.
    symbol      text        PRIMARY KEY CHECK (symbol ~ '^[A-Z0-9^][A-Z0-9.^-]{0,19}$'),
    -- A display name (e.g. "Apple Inc."); optional, the ETL never reads it.
    name        text,
    -- Whether the ETL fetches it.
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The ETL reads only the active ones.
CREATE INDEX symbols_active_idx ON symbols (symbol) WHERE active;

COMMENT ON TABLE symbols IS 'Symbols tracked by the ETL; the API manages them.';
