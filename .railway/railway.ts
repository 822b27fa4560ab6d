// SigmaSight on Railway, as infrastructure as code: the API service, the daily ETL cron
// service and their Postgres. Applied with `railway config plan` / `railway config apply`;
// see docs/railway.md. The same settings, for services still on config-as-code, are in
// ../railway.json and ../railway.etl.json, and scripts/check-railway.sh keeps the two in step.
//
// Node evaluates this file with type stripping only: no enums, namespaces or parameter
// properties (tsconfig's erasableSyntaxOnly enforces that).

import { defineRailway, postgres, preserve, project, service } from "railway/iac";

/** Where the Dockerfile installs the binary. Start commands run in exec form, without a shell,
 * so they name it in full and can expand no `$VAR`. */
export const BINARY = "/usr/local/bin/sigmasight";

/** Must exceed the app's SHUTDOWN_GRACE_SECONDS (default 25): Railway sends SIGKILL when it
 * runs out, and the app still has to close its pool after the grace period. */
export const DRAINING_SECONDS = 30;

/** How long the previous deployment keeps serving after the new one turns active, before its
 * SIGTERM: time for the edge to stop routing to it while it still accepts connections. */
export const OVERLAP_SECONDS = 10;

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

  // Railway Postgres presents a self-signed certificate: `require` encrypts without verifying
  // (verify-full cannot succeed), and unlike sqlx's default `prefer` never falls back to
  // plaintext. Written as a reference template because a typed reference cannot take a suffix.
  const databaseUrl = `\${{${db.name}.DATABASE_URL}}?sslmode=require`;

  const api = service("api", {
    build: { builder: "DOCKERFILE", dockerfilePath: "Dockerfile", watchPatterns: IMAGE_INPUTS },
    start: `${BINARY} serve`,
    // One element: Railway runs a single command from this list, split into arguments, with
    // no shell.
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
      DATABASE_URL: databaseUrl,
      // Normally a no-op after the pre-deploy `migrate`; kept on so that readiness confirms the
      // schema and a deploy that skipped the pre-deploy step still migrates.
      MIGRATE_ON_START: "true",
      LOG_FORMAT: "json",
      LOG_LEVEL: "info",
      // Per environment (the web app's origins), set in Railway.
      CORS_ALLOWED_ORIGINS: preserve(),
      // Sealed in Railway; `serve` refuses to start without it (docs/auth.md).
      SECRET_KEY: preserve(),
      SECRET_KEY_PREVIOUS: preserve(),
    },
  });

  const etl = service("etl", {
    build: { builder: "DOCKERFILE", dockerfilePath: "Dockerfile", watchPatterns: IMAGE_INPUTS },
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
      DATABASE_URL: databaseUrl,
      LOG_FORMAT: "json",
      LOG_LEVEL: "info",
      // Sealed variables, set in Railway; never written here.
      FMP_API_KEY: preserve(),
      POLYGON_API_KEY: preserve(),
    },
  });

  // The linked project's own name, so that a project named otherwise is not planned a rename.
  return project(ctx.projectName ?? "sigmasight", { resources: [db, api, etl] });
});
