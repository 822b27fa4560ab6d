// Offline checks of railway.ts, run by scripts/check-railway.sh (`npx tsx check.ts`).
//
// Evaluates the program as `railway config plan` would, for each environment named on the
// command line, builds the resource graph from the definition (the compiler that does this for
// real ships in the Railway CLI, not in the SDK), runs the SDK's `validateGraph` on it, and
// asserts the deployment settings the service depends on, including that they match the
// config-as-code files, that the services connect as the least-privilege roles of
// scripts/db/roles.sql, and that every variable of the table in docs/railway.md (and every
// setting the app reads, from src/config/settings.rs) is declared as that table says. All of it in
// both of the file's modes: the Dockerfile build (SIGMASIGHT_IMAGE unset) and a registry image by
// digest (set to a sample digest here), where the services must run that image with the same
// commands and variables; and SIGMASIGHT_IMAGE set to a tag, or to anything but a digest
// reference, must stop the evaluation. Prints one `ok`/`FAIL` line per assertion; exits 3 if
// any failed.
//
// Environment: SHUTDOWN_GRACE_SECONDS_DEFAULT, the app's default grace period (from the script).
// SIGMASIGHT_IMAGE from the caller's shell is ignored: each mode sets it itself.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import {
  RAILWAY_GRAPH_VERSION,
  createRailwayContext,
  project,
  validateGraph,
  type Edge,
  type RailwayGraph,
  type ResourceNode,
  type ServiceNode,
  type VariableValue,
} from "railway/iac";

import program, { BINARY, IMAGE_VARIABLE, SHUTDOWN_GRACE_SECONDS } from "./railway.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const shutdownGrace = Number(process.env.SHUTDOWN_GRACE_SECONDS_DEFAULT ?? "25");
const environments = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["production"];

let failures = 0;

function check(name: string, ok: boolean, why = ""): void {
  if (ok) {
    console.log(`ok\t${name}`);
  } else {
    failures += 1;
    console.log(`FAIL\t${name}${why ? `: ${why}` : ""}`);
  }
}

/** `${{Name.VAR}}` references inside a literal value; `shared.` ones name no resource. */
function templateTargets(value: string): string[] {
  return [...value.matchAll(/\$\{\{\s*([^.}]+)\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}/g)]
    .map((m) => m[1]!.trim())
    .filter((name) => name !== "shared");
}

/** The graph the CLI would diff: resources as defined, and an edge per variable reference. */
function graphOf(name: string, environment: string, resources: ResourceNode[]): RailwayGraph {
  const byName = new Map(resources.map((r) => [r.name, r]));
  const edges: Edge[] = [];
  for (const resource of resources) {
    if (resource.type !== "service" && resource.type !== "database") continue;
    for (const [key, value] of Object.entries(resource.variables ?? {})) {
      if (value.type === "reference") {
        edges.push({ from: resource.address, to: value.resource, type: "variable", key });
      } else if (value.type === "literal" && value.value) {
        for (const target of templateTargets(value.value)) {
          // An unknown name becomes an edge to a missing address, which validateGraph reports.
          const to = byName.get(target)?.address ?? `service.${target}`;
          edges.push({ from: resource.address, to, type: "variable", key });
        }
      }
    }
  }
  return {
    version: RAILWAY_GRAPH_VERSION,
    project: { name },
    environments: [{ name: environment }],
    resources,
    edges,
  };
}

function literal(value: VariableValue | undefined): string | undefined {
  return value?.type === "literal" ? (value.value ?? undefined) : undefined;
}

/** A start command Railway can run in exec form: our binary, a subcommand, no shell syntax. */
function execForm(command: unknown, subcommand: string): boolean {
  return (
    typeof command === "string" &&
    command === `${BINARY} ${subcommand}` &&
    !/[$`;&|<>()"'\\]/.test(command)
  );
}

function readText(file: string): string {
  try {
    return readFileSync(`${repoRoot}/${file}`, "utf8");
  } catch {
    return "";
  }
}

/** The default role names of scripts/db/roles.sql (`\set owner_role ...`, `\set app_role ...`). */
function rolesOfRolesSql(): { owner?: string; app?: string } {
  const sql = readText("scripts/db/roles.sql");
  return {
    owner: /^\s*\\set owner_role (\w+)\s*$/m.exec(sql)?.[1],
    app: /^\s*\\set app_role (\w+)\s*$/m.exec(sql)?.[1],
  };
}

/** Every setting the app reads, as its environment variable: the `key: "..."` line of each entry
 * of the table in src/config/settings.rs. */
function configVariables(): string[] {
  return [...readText("src/config/settings.rs").matchAll(/^ *key: "([a-z0-9_]+)",$/gm)].map((m) => m[1]!.toUpperCase());
}

/** How a service declares a variable: with a value, as `preserve()`, or not at all. */
type Use = "value" | "preserved" | "absent";

/** The table under "## Variables" in docs/railway.md: for each variable, its use on `api` and
 * on `etl` (first words of the cells: `value`, `preserved`, `not used` or `injected`). */
function documentedVariables(): { rows: Map<string, Record<"api" | "etl", Use | undefined>>; problems: string[] } {
  const doc = readText("docs/railway.md");
  const start = doc.indexOf("\n## Variables\n");
  const end = doc.indexOf("\n## ", start + 1);
  const section = start < 0 ? "" : doc.slice(start, end < 0 ? undefined : end);
  const rows = new Map<string, Record<"api" | "etl", Use | undefined>>();
  const problems: string[] = [];
  const use = (cell: string): Use | undefined => {
    if (/^value\b/i.test(cell)) return "value";
    if (/^preserved\b/i.test(cell)) return "preserved";
    if (/^(not used|injected)\b/i.test(cell)) return "absent";
    return undefined;
  };
  for (const line of section.split("\n")) {
    if (!line.startsWith("| `")) continue;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    const uses = { api: use(cells[1] ?? ""), etl: use(cells[2] ?? "") };
    if (!uses.api || !uses.etl) problems.push(`cannot read the api/etl cells of: ${line}`);
    for (const m of (cells[0] ?? "").matchAll(/`([A-Z][A-Z0-9_]*)`/g)) rows.set(m[1]!, uses);
  }
  if (rows.size === 0) problems.push("no variables table under \"## Variables\" in docs/railway.md");
  return { rows, problems };
}

function useOf(service: ServiceNode, name: string): Use {
  const value = service.variables?.[name];
  if (!value) return "absent";
  return value.type === "preserve" ? "preserved" : "value";
}

function readJson(file: string): Record<string, any> | undefined {
  try {
    return JSON.parse(readFileSync(`${repoRoot}/${file}`, "utf8")) as Record<string, any>;
  } catch {
    return undefined;
  }
}

/** Every setting `service` has that the config-as-code file also sets must be equal. */
function sameAsConfigFile(service: ServiceNode, file: string): void {
  const json = readJson(file);
  if (!json) {
    check(`${service.name}: settings match ${file}`, false, `${file} is missing or invalid`);
    return;
  }
  const differences: string[] = [];
  for (const section of ["build", "deploy"] as const) {
    const ours = (service[section] ?? {}) as Record<string, unknown>;
    const theirs = (json[section] ?? {}) as Record<string, unknown>;
    for (const key of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
      let a = ours[key];
      let b = theirs[key];
      // The config-as-code file also watches itself, so that a settings change deploys.
      if (key === "watchPatterns" && Array.isArray(b)) b = b.filter((p) => p !== file);
      if (key === "watchPatterns" && Array.isArray(a)) a = [...a].sort();
      if (key === "watchPatterns" && Array.isArray(b)) b = [...b].sort();
      if (JSON.stringify(a ?? null) !== JSON.stringify(b ?? null)) {
        differences.push(`${section}.${key}: ${JSON.stringify(a)} here, ${JSON.stringify(b)} there`);
      }
    }
  }
  check(`${service.name}: settings match ${file}`, differences.length === 0, differences.join("; "));
}

/** A registry image by digest, as a rollback would give SIGMASIGHT_IMAGE. */
const SAMPLE_IMAGE = `ghcr.io/sigmasight/sigmasight-backend@sha256:${"0123456789abcdef".repeat(4)}`;

/** The file's two modes (its header): the Dockerfile build, and a registry image by digest. */
const MODES = [
  { name: "Dockerfile", image: undefined },
  { name: "image", image: SAMPLE_IMAGE },
] as const;

/** The program evaluated as `plan` would with SIGMASIGHT_IMAGE set to `image` (unset for
 * undefined), whatever the caller's shell holds. */
async function evaluate(environment: string, image: string | undefined) {
  const saved = process.env[IMAGE_VARIABLE];
  if (image === undefined) delete process.env[IMAGE_VARIABLE];
  else process.env[IMAGE_VARIABLE] = image;
  try {
    const ctx = createRailwayContext({ command: "plan", environment, projectName: "sigmasight" });
    return await program(ctx, project);
  } finally {
    if (saved === undefined) delete process.env[IMAGE_VARIABLE];
    else process.env[IMAGE_VARIABLE] = saved;
  }
}

/** The Dockerfile mode's services per environment, which the image mode must match. */
const built = new Map<string, ServiceNode[]>();

for (const environment of environments) for (const mode of MODES) {
  const label = `${environment}, ${mode.name}`;
  const definition = await evaluate(environment, mode.image);
  const resources = (definition.resources ?? []).flat();
  const graph = graphOf(definition.name, environment, resources);
  const errors = validateGraph(graph);
  check(`[${label}] validateGraph`, errors.length === 0, errors.join("; "));

  const find = (address: string) => resources.find((r) => r.address === address);
  const db = find("database.Postgres");
  const api = find("service.api") as ServiceNode | undefined;
  const etl = find("service.etl") as ServiceNode | undefined;
  check(
    `[${label}] resources are Postgres, api and etl`,
    db?.type === "database" && db.engine === "postgres" && !!api && !!etl && resources.length === 3,
    resources.map((r) => r.address).join(", "),
  );
  if (!api || !etl) continue;

  const roles = rolesOfRolesSql();
  check(
    `[${label}] scripts/db/roles.sql names its owner and app roles`,
    !!roles.owner && !!roles.app,
    JSON.stringify(roles),
  );
  // The private network (PGHOST is Postgres's private domain), the role and a password held
  // by the service itself, and TLS that never falls back to plaintext.
  const urlAs = (role: string | undefined, passwordVariable: string) =>
    `postgresql://${role}:\${{${passwordVariable}}}@\${{Postgres.PGHOST}}:\${{Postgres.PGPORT}}` +
    `/\${{Postgres.PGDATABASE}}?sslmode=require`;

  for (const service of [api, etl]) {
    const url = literal(service.variables?.DATABASE_URL);
    check(
      `[${label}] ${service.name}: DATABASE_URL is the app role (${roles.app}) on Postgres's private host, sslmode=require`,
      url === urlAs(roles.app, "DB_APP_PASSWORD"),
      String(url),
    );
    const dangling = Object.entries(service.variables ?? {}).flatMap(([key, value]) =>
      [...(literal(value) ?? "").matchAll(/\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)]
        .map((m) => m[1]!)
        .filter((name) => service.variables?.[name]?.type !== "preserve")
        .map((name) => `${key} -> ${name}`),
    );
    check(
      `[${label}] ${service.name}: every \${{VAR}} of its own names a variable it preserves`,
      dangling.length === 0,
      dangling.join(", "),
    );
    if (mode.image === undefined) {
      check(
        `[${label}] ${service.name}: built from the Dockerfile, from the source connected in Railway`,
        service.build?.builder === "DOCKERFILE" && service.build.dockerfilePath === "Dockerfile" && !service.source,
        JSON.stringify({ build: service.build, source: service.source }),
      );
    } else {
      check(
        `[${label}] ${service.name}: runs ${IMAGE_VARIABLE}, the registry image by digest, and builds nothing`,
        service.kind === "docker-image" &&
          service.source?.type === "image" &&
          service.source.image === mode.image &&
          service.build === undefined,
        JSON.stringify({ kind: service.kind, source: service.source, build: service.build }),
      );
    }
    const secrets = Object.entries(service.variables ?? {}).filter(
      ([key, value]) => /KEY|SECRET|PASSWORD|TOKEN/.test(key) && value.type !== "preserve",
    );
    check(
      `[${label}] ${service.name}: secrets are preserve(), never values`,
      secrets.length === 0,
      secrets.map(([key]) => key).join(", "),
    );
  }

  const migrationUrl = literal(api.variables?.DATABASE_MIGRATION_URL);
  check(
    `[${label}] api: DATABASE_MIGRATION_URL (the pre-deploy migrate) is the owner role (${roles.owner})`,
    migrationUrl === urlAs(roles.owner, "DB_OWNER_PASSWORD"),
    String(migrationUrl),
  );
  check(
    `[${label}] api: MIGRATE_ON_START is false (serving never migrates)`,
    literal(api.variables?.MIGRATE_ON_START) === "false",
    JSON.stringify(api.variables?.MIGRATE_ON_START),
  );
  check(
    `[${label}] etl: no owner's URL or password (it never migrates)`,
    !etl.variables?.DATABASE_MIGRATION_URL && !etl.variables?.DB_OWNER_PASSWORD,
  );
  check(
    `[${label}] api: client addresses from Railway's edge (TRUSTED_PROXY_HOPS=1, CLIENT_ADDRESS_HEADER=x-real-ip)`,
    literal(api.variables?.TRUSTED_PROXY_HOPS) === "1" &&
      literal(api.variables?.CLIENT_ADDRESS_HEADER) === "x-real-ip",
  );

  const d = api.deploy ?? {};
  check(`[${label}] api: start command is exec form`, execForm(d.startCommand, "serve"), String(d.startCommand));
  check(
    `[${label}] api: pre-deploy runs migrate, one exec-form command`,
    Array.isArray(d.preDeployCommand) &&
      d.preDeployCommand.length === 1 &&
      execForm(d.preDeployCommand[0], "migrate"),
    JSON.stringify(d.preDeployCommand),
  );
  check(`[${label}] api: healthcheck is readiness`, d.healthcheckPath === "/api/v1/health", String(d.healthcheckPath));
  const declaredGrace = Number(literal(api.variables?.SHUTDOWN_GRACE_SECONDS));
  // Declared with a value, so that a dashboard edit cannot outlast the draining.
  check(
    `[${label}] api: SHUTDOWN_GRACE_SECONDS is declared with a value (${SHUTDOWN_GRACE_SECONDS} s)`,
    Number.isInteger(declaredGrace) && declaredGrace === SHUTDOWN_GRACE_SECONDS,
    JSON.stringify(api.variables?.SHUTDOWN_GRACE_SECONDS),
  );
  check(
    `[${label}] api: drainingSeconds exceeds the shutdown grace (${Math.max(shutdownGrace, declaredGrace)} s)`,
    typeof d.drainingSeconds === "number" && d.drainingSeconds > Math.max(shutdownGrace, declaredGrace),
    String(d.drainingSeconds),
  );
  check(`[${label}] api: restarts on failure`, d.restartPolicyType === "ON_FAILURE");
  check(`[${label}] api: no cron schedule`, d.cronSchedule == null);

  const e = etl.deploy ?? {};
  check(`[${label}] etl: start command is exec form`, execForm(e.startCommand, "etl"), String(e.startCommand));
  check(`[${label}] etl: has a cron schedule`, typeof e.cronSchedule === "string" && e.cronSchedule.trim().split(/\s+/).length === 5);
  check(`[${label}] etl: no healthcheck`, e.healthcheckPath == null);
  check(`[${label}] etl: never restarted`, e.restartPolicyType === "NEVER");
  check(
    `[${label}] etl: drainingSeconds gives a run time to stop`,
    typeof e.drainingSeconds === "number" && e.drainingSeconds > 0,
    String(e.drainingSeconds),
  );

  // `railway config apply` removes what a service holds but this file does not declare, so
  // every variable the guide tells an operator to set must be declared as the guide says.
  const documented = documentedVariables();
  check(`[${label}] docs/railway.md: the variables table reads`, documented.problems.length === 0, documented.problems.join("; "));
  for (const service of [api, etl]) {
    const name = service.name as "api" | "etl";
    const wrong = [...documented.rows]
      .filter(([variable, uses]) => uses[name] !== undefined && uses[name] !== useOf(service, variable))
      .map(([variable, uses]) => `${variable}: ${uses[name]} there, ${useOf(service, variable)} here`);
    check(`[${label}] ${name}: every variable is declared as docs/railway.md says`, wrong.length === 0, wrong.join("; "));
    const undocumented = Object.keys(service.variables ?? {}).filter((v) => !documented.rows.has(v));
    check(`[${label}] ${name}: every declared variable is in docs/railway.md`, undocumented.length === 0, undocumented.join(", "));
  }
  const unlisted = configVariables().filter((v) => !documented.rows.has(v));
  check(
    `[${label}] every setting of src/config/settings.rs is in the docs/railway.md table`,
    configVariables().length > 0 && unlisted.length === 0,
    unlisted.length ? unlisted.join(", ") : "no keys found in src/config/settings.rs",
  );

  if (mode.image === undefined) {
    built.set(environment, [api, etl]);
    if (environment === environments[0]) {
      sameAsConfigFile(api, "railway.json");
      sameAsConfigFile(etl, "railway.etl.json");
    }
  } else {
    // Only the source may differ: a rollback to an image must not change how it runs.
    for (const [service, dockerfile] of [api, etl].map((s, i) => [s, built.get(environment)?.[i]] as const)) {
      const same = (key: "deploy" | "variables") =>
        JSON.stringify(service[key] ?? null) === JSON.stringify(dockerfile?.[key] ?? null);
      check(
        `[${label}] ${service.name}: the same deploy settings and variables as the Dockerfile mode`,
        !!dockerfile && same("deploy") && same("variables"),
      );
    }
  }
}

// Anything but a registry image by digest stops the evaluation, naming the variable, so that
// `railway config plan` never plans a tag (which can be moved after it was verified).
const refused = [
  ["a tag", "ghcr.io/sigmasight/sigmasight-backend:sha-0123456789abcdef"],
  ["a tag with a digest", `ghcr.io/sigmasight/sigmasight-backend:1.4.2@${SAMPLE_IMAGE.split("@")[1]}`],
  ["a short digest", "ghcr.io/sigmasight/sigmasight-backend@sha256:0123456789abcdef"],
  ["an uppercase digest", SAMPLE_IMAGE.toUpperCase()],
  ["a digest without an image name", SAMPLE_IMAGE.split("@")[1]!],
] as const;
for (const [what, value] of refused) {
  let message = "";
  try {
    await evaluate(environments[0]!, value);
  } catch (error) {
    message = error instanceof Error ? error.message : String(error);
  }
  check(
    `${IMAGE_VARIABLE} set to ${what} stops the evaluation, naming the variable`,
    message.startsWith(`${IMAGE_VARIABLE}: expected a registry image by digest`),
    message || "the program evaluated without an error",
  );
}

// 3, not 1: the script tells failed assertions (already printed) from a crash.
process.exitCode = failures === 0 ? 0 : 3;
