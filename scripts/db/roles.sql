-- Least-privilege roles for SigmaSight, idempotent: run it again at any time.
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 \
--        -v owner_password="$OWNER_PASSWORD" -v app_password="$APP_PASSWORD" \
--        -f scripts/db/roles.sql
--
-- Run as a role that may create roles (the database owner on a managed service, e.g. Railway's
-- `postgres` user), connected to the application's database. Optional variables:
-- owner_role (default sigmasight_owner), app_role (default sigmasight_app).
--
-- The owner role owns the schema and runs migrations (DATABASE_MIGRATION_URL); the app role,
-- which serves requests and runs the ETL (DATABASE_URL), reads and writes rows and nothing
-- else: no DDL, not superuser, no role or database creation. Default privileges extend its
-- grants to every table a later migration creates.

\set ON_ERROR_STOP on
\if :{?owner_role}
\else
  \set owner_role sigmasight_owner
\endif
\if :{?app_role}
\else
  \set app_role sigmasight_app
\endif
\if :{?owner_password}
\else
  \echo 'roles.sql: set owner_password (psql -v owner_password=...)'
  \quit 3
\endif
\if :{?app_password}
\else
  \echo 'roles.sql: set app_password (psql -v app_password=...)'
  \quit 3
\endif

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

-- Objects created before these roles existed (migrations once run as another role) move to the
-- owner, so later migrations may alter them.
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
