-- Daily OHLCV bars, one row per symbol and trading day, written by the ETL (`sigmasight etl`)
-- and read by the market-data API.
--
-- Prices are exact decimals (`numeric`), never binary floats: they are compared, summed into
-- market values and echoed back to clients digit for digit. Six decimal places cover sub-penny
-- quotes; twenty digits in all cover the dearest share traded.
--
-- The CHECKs reject a malformed bar at the door, whatever wrote it; the ETL validates first and
-- counts its rejects, so these are the last line, not the first.
CREATE TABLE daily_prices (
    -- Upper-case ticker as the providers spell it: letters, digits, and . - ^ for share classes
    -- and indices (BRK.B, BF-B, ^GSPC).
    symbol      text          NOT NULL CHECK (symbol ~ '^[A-Z0-9^][A-Z0-9.^-]{0,19}$'),
    -- The trading day in New York, not the UTC day of the provider's timestamp.
    date        date          NOT NULL,
    open        numeric(20,6) NOT NULL,
    high        numeric(20,6) NOT NULL,
    low         numeric(20,6) NOT NULL,
    close       numeric(20,6) NOT NULL,
    -- Close adjusted for splits and dividends, where the provider gives one.
    adj_close   numeric(20,6),
    volume      bigint        NOT NULL,
    -- Which provider supplied the bar (`fmp`, `polygon`, ...).
    source      text          NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]{0,31}$'),
    -- When the row last changed; an idempotent re-run leaves it alone.
    updated_at  timestamptz   NOT NULL DEFAULT now(),

    PRIMARY KEY (symbol, date),
    CONSTRAINT daily_prices_prices_non_negative
        CHECK (open >= 0 AND high >= 0 AND low >= 0 AND close >= 0 AND coalesce(adj_close, 0) >= 0),
    CONSTRAINT daily_prices_high_not_below_low CHECK (high >= low),
    CONSTRAINT daily_prices_open_within_range CHECK (open BETWEEN low AND high),
    CONSTRAINT daily_prices_close_within_range CHECK (close BETWEEN low AND high),
    CONSTRAINT daily_prices_volume_non_negative CHECK (volume >= 0)
);

-- The primary key serves "bars of one symbol between two dates". This one serves "the latest
-- trading day loaded" (ETL catch-up, readiness of data) without scanning every symbol.
CREATE INDEX daily_prices_date_idx ON daily_prices (date);

COMMENT ON TABLE daily_prices IS 'Daily OHLCV bars per symbol and New York trading day; written by the ETL.';
