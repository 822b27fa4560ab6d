// SigmaSight on Railway, as infrastructure as code: the API service, the daily ETL cron
// service and their Postgres. Applied with `railway config plan` / `railway config apply`;
// see docs/railway.md. The same build and deploy settings, for services still on config as
// code, are in ../railway.json and ../railway.etl.json, and scripts/check-railway.sh keeps the
// files in step, and this file in step with the variables table of docs/railway.md.
//
// Every variable a service should hold is declared here, with a value or as `preserve()`:
// `railway config apply` removes whatever a service holds that this file does not declare.
//
// Two sources for `api` and `etl`, switched by one variable of the shell that runs
// `railway config plan|apply` (docs/railway.md, "Rollback by digest"):
//   - unset (the default): Railway builds the root Dockerfile from the connected repository;
//   - SIGMASIGHT_IMAGE=ghcr.io/<owner>/<repo>@sha256:<64 hex>: both services run that registry
//     image instead, with the same commands and variables. For a rollback past Railway's own
//     image retention, to an image scripts/verify-image.sh has verified. Only a digest is
//     accepted, never a tag: a tag can be moved after it was verified.
//
// Node evaluates this file with type stripping only: no enums, namespaces or parameter
// properties (tsconfig's erasableSyntaxOnly enforces that).

import { defineRailway, image, postgres, preserve, project, service } from "railway/iac";

/** Where the Dockerfile installs the binary. Start commands run in exec form, without a shell,
 * so they name it in full and can expand no `$VAR`. */
export const BINARY = "/usr/local/bin/sigmasight";

/** SHUTDOWN_GRACE_SECONDS on `api`: how long in-flight requests get after SIGTERM. Declared
 * with a value, not preserved, so that nobody raises it in the dashboard past the draining. */
export const SHUTDOWN_GRACE_SECONDS = 25;

/** Must exceed SHUTDOWN_GRACE_SECONDS: Railway sends SIGKILL when it runs out, and the app
 * still has to close its pool after the grace period. */
export const DRAINING_SECONDS = 30;

/** How long the previous deployment keeps serving after the new one turns active, before its
 * SIGTERM: time for the edge to stop routing to it while it still accepts connections. */
export const OVERLAP_SECONDS = 10;

/** The roles of scripts/db/roles.sql (its defaults): the schema owner migrates, the app role
 * serves and loads. */
export const OWNER_ROLE = "sigmasight_owner";
export const APP_ROLE = "sigmasight_app";

/** The variable that switches both services from the Dockerfile build to a registry image. */
export const IMAGE_VARIABLE = "SIGMASIGHT_IMAGE";

/** A registry image by digest and nothing else: lowercase name components (the first may be a
 * registry host with a port), `@sha256:` and 64 lowercase hex digits; no tag. */
const DIGEST_REFERENCE =
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+@sha256:[0-9a-f]{64}$/;

/** The image both services run instead of building, from IMAGE_VARIABLE: undefined when it is
 * unset or empty (build the Dockerfile); an error naming the variable for anything but a
 * registry image by digest, so that `plan` stops before it plans a tag. */
export function pinnedImage(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  if (!DIGEST_REFERENCE.test(value)) {
    throw new Error(
      `${IMAGE_VARIABLE}: expected a registry image by digest, ghcr.io/<owner>/<repo>@sha256:<64 hex digits> ` +
        `(verified first with scripts/verify-image.sh), got "${value}"`,
    );
  }
  return value;
}

/** Everything the image is built from: a change elsewhere (docs, scripts) deploys nothing. */
const IMAGE_INPUTS = [
  "src/**",
  "migrations/**",
  ".sqlx/**",
  "Cargo.toml",
  "Cargo.lock",
  "build.rs",
  "Dockerfile",
  ".dockerignore",
];

export default defineRailway((ctx) => {
  const db = postgres("Postgres");

  // Where both services' image comes from: the Dockerfile by default, or a verified registry
  // image by digest (the rollback mode; the file header).
  const pinned = pinnedImage(process.env[IMAGE_VARIABLE]);
  const origin = pinned
    ? { source: image(pinned) }
    : { build: { builder: "DOCKERFILE" as const, dockerfilePath: "Dockerfile", watchPatterns: IMAGE_INPUTS } };

  /** A URL for `role` on the private network, its password taken from the service's own
   * (sealed) variable `passwordVariable`, which must hold URL-safe characters. Railway
   * Postgres presents a self-signed certificate: `require` encrypts without verifying
   * (verify-full cannot succeed), and unlike sqlx's default `prefer` never falls back to
   * plaintext. Written as a reference template: a typed reference cannot be part of a string. */
  const urlAs = (role: string, passwordVariable: string) =>
    `postgresql://${role}:\${{${passwordVariable}}}` +
    `@\${{${db.name}.PGHOST}}:\${{${db.name}.PGPORT}}/\${{${db.name}.PGDATABASE}}?sslmode=require`;

  const api = service("api", {
    ...origin,
    start: `${BINARY} serve`,
    // One element: Railway runs a single command from this list, split into arguments, with
    // no shell. `migrate` connects as DATABASE_MIGRATION_URL, the schema owner.
    preDeploy: [`${BINARY} migrate`],
    healthcheck: "/api/v1/health",
    healthcheckTimeout: 120,
    deploy: {
      restartPolicyType: "ON_FAILURE",
      restartPolicyMaxRetries: 5,
      overlapSeconds: OVERLAP_SECONDS,
      drainingSeconds: DRAINING_SECONDS,
    },
    env: {
      // Serving: the app role, rows only.
      DATABASE_URL: urlAs(APP_ROLE, "DB_APP_PASSWORD"),
      // The pre-deploy `migrate`: the schema owner. The serving process holds it too (Railway
      // gives both the service's variables) but never uses it, since it does not migrate.
      DATABASE_MIGRATION_URL: urlAs(OWNER_ROLE, "DB_OWNER_PASSWORD"),
      DB_APP_PASSWORD: preserve(),
      DB_OWNER_PASSWORD: preserve(),
      // The pre-deploy command migrates; serving must not need the owner's rights.
      MIGRATE_ON_START: "false",
      LOG_FORMAT: "json",
      SHUTDOWN_GRACE_SECONDS: String(SHUTDOWN_GRACE_SECONDS),
      // Railway's edge sets X-Real-IP to the client's address, replacing any the client sent,
      // and is the one proxy in front of the service.
      TRUSTED_PROXY_HOPS: "1",
      CLIENT_ADDRESS_HEADER: "x-real-ip",
      // Per environment or tuned in Railway; unset means the app's default (docs/railway.md).
      LOG_LEVEL: preserve(),
      CORS_ALLOWED_ORIGINS: preserve(),
      DATABASE_POOL_SIZE: preserve(),
      DATABASE_POOL_TIMEOUT_SECONDS: preserve(),
      DATABASE_POOL_RECYCLE_SECONDS: preserve(),
      REQUEST_TIMEOUT_SECONDS: preserve(),
      REQUEST_BODY_LIMIT_BYTES: preserve(),
      SHUTDOWN_DRAIN_SECONDS: preserve(),
      HEADER_READ_TIMEOUT_SECONDS: preserve(),
      MAX_CONNECTIONS: preserve(),
      PASSWORD_HASH_CONCURRENCY: preserve(),
      PASSWORD_HASH_QUEUE: preserve(),
      ACCESS_TOKEN_TTL_SECONDS: preserve(),
      // Unset: no metrics listener. Set, it is scraped over private networking only
      // (docs/operations.md); never give it a public domain.
      METRICS_PORT: preserve(),
      // Sealed in Railway; `serve` refuses to start without SECRET_KEY (docs/auth.md).
      SECRET_KEY: preserve(),
      SECRET_KEY_PREVIOUS: preserve(),
    },
  });

  const etl = service("etl", {
    ...origin,
    start: `${BINARY} etl`,
    deploy: {
      // 22:30 UTC, Monday to Friday: 17:30 in New York in winter (EST), 18:30 in summer (EDT),
      // so always after the 16:00 close and the providers' end-of-day data.
      cronSchedule: "30 22 * * 1-5",
      // A failed run waits for the next schedule; restarting would re-run it in a loop.
      restartPolicyType: "NEVER",
      // A redeploy during a run sends it SIGTERM: time to stop at a batch boundary and record
      // the run as cancelled, rather than SIGKILL at once (Railway's default is 0).
      drainingSeconds: DRAINING_SECONDS,
    },
    env: {
      // The app role; the ETL never migrates, so it has no owner's URL or password.
      DATABASE_URL: urlAs(APP_ROLE, "DB_APP_PASSWORD"),
      DB_APP_PASSWORD: preserve(),
      LOG_FORMAT: "json",
      LOG_LEVEL: preserve(),
      DATABASE_POOL_TIMEOUT_SECONDS: preserve(),
      ETL_PRIMARY_PROVIDER: preserve(),
      ETL_BENCHMARK_SYMBOLS: preserve(),
      ETL_LOOKBACK_DAYS: preserve(),
      ETL_REQUEST_TIMEOUT_SECONDS: preserve(),
      ETL_DEADLINE_SECONDS: preserve(),
      ETL_MAX_RETRIES: preserve(),
      ETL_BATCH_SIZE: preserve(),
      FMP_BASE_URL: preserve(),
      POLYGON_BASE_URL: preserve(),
      FMP_REQUESTS_PER_MINUTE: preserve(),
      POLYGON_REQUESTS_PER_MINUTE: preserve(),
      // Sealed variables, set in Railway; never written here.
      FMP_API_KEY: preserve(),
      POLYGON_API_KEY: preserve(),
    },
  });

  // The linked project's own name, so that a project named otherwise is not planned a rename.
  return project(ctx.projectName ?? "sigmasight", { resources: [db, api, etl] });
});
