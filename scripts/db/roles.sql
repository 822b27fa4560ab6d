-- Least-privilege roles for SigmaSight, idempotent: run it again at any time.
--
--   export DB_OWNER_PASSWORD=... DB_APP_PASSWORD=...
--   psql "$ADMIN_URL" -X -f scripts/db/roles.sql
--
-- The passwords come from the environment of psql only (psql 15 or newer, for \getenv): a
-- value given on the command line (`-v owner_password=...`) would show in `ps` and is ignored.
-- Run it as a role that may create roles (the database owner on a managed service, e.g.
-- Railway's `postgres` user), connected to the application's database. Optional psql variables
-- (not secrets): owner_role (default sigmasight_owner), app_role (default sigmasight_app).
--
-- The owner role owns the schema and runs migrations (DATABASE_MIGRATION_URL); the app role,
-- which serves requests and runs the ETL (DATABASE_URL), reads and writes rows and nothing
-- else: no DDL, not superuser, no role or database creation, and only reads the migration
-- history. Default privileges extend its grants to every table a later migration creates.

\set ON_ERROR_STOP on
\if :{?owner_role}
\else
  \set owner_role sigmasight_owner
\endif
\if :{?app_role}
\else
  \set app_role sigmasight_app
\endif

-- Only the environment counts; an empty value is refused like a missing one (PostgreSQL would
-- take an empty password as none at all).
\unset owner_password
\unset app_password
\getenv owner_password DB_OWNER_PASSWORD
\getenv app_password DB_APP_PASSWORD
\if :{?owner_password}
  SELECT :'owner_password' <> '' AS owner_password_given \gset
\else
  \set owner_password_given false
\endif
\if :owner_password_given
\else
  DO $$ BEGIN RAISE EXCEPTION 'roles.sql: DB_OWNER_PASSWORD is not set: export the owner role''s password in the environment of psql'; END $$;
\endif
\if :{?app_password}
  SELECT :'app_password' <> '' AS app_password_given \gset
\else
  \set app_password_given false
\endif
\if :app_password_given
\else
  DO $$ BEGIN RAISE EXCEPTION 'roles.sql: DB_APP_PASSWORD is not set: export the app role''s password in the environment of psql'; END $$;
\endif

BEGIN;

SELECT format('CREATE ROLE %I', :'owner_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner_role') \gexec
SELECT format('CREATE ROLE %I', :'app_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec

-- Re-asserted on every run, so a role altered by hand is brought back in line.
ALTER ROLE :"owner_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';

SELECT current_database() AS database \gset
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"owner_role", :"app_role";

-- The owner owns the schema; nobody else may create objects in it.
ALTER SCHEMA public OWNER TO :"owner_role";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";

-- sqlx's migration history, exactly as sqlx 0.8 creates it (`CREATE TABLE IF NOT EXISTS`, so
-- the first migration finds it and carries on). Made here when this file runs before the first
-- migration: a table the owner created later would get the app role's write grants from the
-- default privileges below, and the app role must never be able to rewrite the history.
CREATE TABLE IF NOT EXISTS public._sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);

-- Objects created before these roles existed (migrations once run as another role, and the
-- history table just made) move to the owner, so later migrations may alter them.
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, :'owner_role')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT (c.relkind = 'S' AND EXISTS (
        SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
  AND pg_get_userbyid(c.relowner) <> :'owner_role' \gexec

-- Rows only, on what exists now and on what the owner's migrations create later.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The migration history is the owner's to write. The app role may read it (which migrations a
-- database holds is no secret, and a process may want to check it), never change it.
REVOKE ALL ON public._sqlx_migrations FROM PUBLIC, :"app_role";
GRANT SELECT ON public._sqlx_migrations TO :"app_role";

COMMIT;
