-- Portfolios and the positions they hold. A portfolio belongs to one user; the API answers 404
-- for another user's portfolio, so its existence is not revealed either.
CREATE TABLE portfolios (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A user is disabled rather than deleted, so RESTRICT: deleting one with portfolios is a
    -- mistake to be stopped, not cascaded.
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),

    -- A user's portfolio names tell them apart in the UI; the index also serves "my portfolios".
    CONSTRAINT portfolios_user_name_key UNIQUE (user_id, name)
);

CREATE TABLE positions (
    id            uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    portfolio_id  uuid          NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    -- The same spelling rule as `daily_prices.symbol`, so a position can be priced from there.
    symbol        text          NOT NULL CHECK (symbol ~ '^[A-Z0-9^][A-Z0-9.^-]{0,19}$'),
    -- Exact decimals, as prices are: fractional shares to 8 places; a short position is
    -- negative; zero is not a position.
    quantity      numeric(24,8) NOT NULL CHECK (quantity <> 0),
    -- Cost per share, in the same scale as `daily_prices` (6 places).
    cost_basis    numeric(20,6) NOT NULL CHECK (cost_basis >= 0),
    opened_at     date          NOT NULL,
    created_at    timestamptz   NOT NULL DEFAULT now()
);

-- "The positions of one portfolio" (listing, summary, cascade on delete).
CREATE INDEX positions_portfolio_idx ON positions (portfolio_id);

COMMENT ON TABLE portfolios IS 'Named portfolios, each owned by one user.';
COMMENT ON TABLE positions IS 'Holdings of a portfolio: symbol, quantity, cost per share, opening date.';
