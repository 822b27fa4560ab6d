-- The spelling rules of `daily_prices.symbol` and `daily_prices.source`, unchanged, checked
-- without regular expressions: every row the ETL writes evaluates both, and the two regexes
-- were about a sixth of an upsert's cost (docs/benchmarks.md). `translate` deletes the allowed
-- characters, so the rule holds when nothing is left.
--
--   symbol ~ '^[A-Z0-9^][A-Z0-9.^-]{0,19}$'   1-20 of A-Z 0-9 . ^ -, not starting with . or -
--   source ~ '^[a-z][a-z0-9_]{0,31}$'         1-32 of a-z 0-9 _, starting with a-z
--
-- Older releases never relied on these constraints' names or texts, so a rollback is safe.
ALTER TABLE daily_prices
    DROP CONSTRAINT daily_prices_symbol_check,
    DROP CONSTRAINT daily_prices_source_check,
    ADD CONSTRAINT daily_prices_symbol_check CHECK (
        length(symbol) BETWEEN 1 AND 20
        AND translate(symbol, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.^-', '') = ''
        AND left(symbol, 1) NOT IN ('.', '-')),
    ADD CONSTRAINT daily_prices_source_check CHECK (
        length(source) BETWEEN 1 AND 32
        AND translate(source, 'abcdefghijklmnopqrstuvwxyz0123456789_', '') = ''
        AND ascii(source) BETWEEN ascii('a') AND ascii('z'));
