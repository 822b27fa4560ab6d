-- People who may call the API. Created by `sigmasight user create` (or `seed --demo`), never by
-- the API itself: there is no self-service sign-up.
CREATE TABLE users (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Kept as typed; uniqueness ignores case (index below), and logins look it up by lower().
    email           text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    -- An argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash): the parameters travel
    -- with the hash, so they can be raised later without invalidating old passwords.
    password_hash   text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role            text        NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- A disabled user cannot log in, and the tokens already issued stop working (the API reads
    -- this row on every request; see docs/auth.md).
    disabled        boolean     NOT NULL DEFAULT false,
    -- Copied into every token as `ver`; bumped on disable or password change, which revokes
    -- every token issued before.
    token_version   integer     NOT NULL DEFAULT 0 CHECK (token_version >= 0)
);

-- One account per address whatever its case: Alice@Example.com and alice@example.com are one.
CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email));

COMMENT ON TABLE users IS 'API users: argon2id password hashes, roles, and a token version for revocation.';
