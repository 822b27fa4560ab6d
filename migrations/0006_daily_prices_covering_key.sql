-- The primary key carries every column the market-data API reads (INCLUDE), so a symbol's bars
-- come from a few index pages, an index-only scan, instead of one heap page per bar: the daily
-- ETL writes one row per symbol per day, so a symbol's rows are spread across the table. A
-- year of one symbol's bars went from 267 pages read to 7 (docs/benchmarks.md).
--
-- The key's columns and name are unchanged, so `ON CONFLICT (symbol, date)` and every earlier
-- release work against it (expand/contract: docs/operations.md). The cost: the index holds the
-- bars a second time, and rebuilding it locks the table for the seconds it takes.
ALTER TABLE daily_prices
    DROP CONSTRAINT daily_prices_pkey,
    ADD CONSTRAINT daily_prices_pkey PRIMARY KEY (symbol, date)
        INCLUDE (open, high, low, close, adj_close, volume, updated_at);

-- No query reads by date across symbols, and this index was the dearest part of every ETL
-- write: each trading day is one key shared by every symbol, and maintaining those long runs
-- of duplicates more than doubled an upsert batch's time. No release reads it, so dropping it
-- now is safe for a rollback.
DROP INDEX daily_prices_date_idx;
