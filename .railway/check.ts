// Offline checks of railway.ts, run by scripts/check-railway.sh (`npx tsx check.ts`).
//
// Evaluates the program as `railway config plan` would, for each environment named on the
// command line, builds the resource graph from the definition (the compiler that does this for
// real ships in the Railway CLI, not in the SDK), runs the SDK's `validateGraph` on it, and
// asserts the deployment settings the service depends on, including that they match the
// config-as-code files. Prints one `ok`/`FAIL` line per assertion; exits 3 if any failed.
//
// Environment: SHUTDOWN_GRACE_SECONDS_DEFAULT, the app's default grace period (from the script).

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

import program, { BINARY } from "./railway.ts";

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

for (const environment of environments) {
  const ctx = createRailwayContext({ command: "plan", environment, projectName: "sigmasight" });
  const definition = await program(ctx, project);
  const resources = (definition.resources ?? []).flat();
  const graph = graphOf(definition.name, environment, resources);
  const errors = validateGraph(graph);
  check(`[${environment}] validateGraph`, errors.length === 0, errors.join("; "));

  const find = (address: string) => resources.find((r) => r.address === address);
  const db = find("database.Postgres");
  const api = find("service.api") as ServiceNode | undefined;
  const etl = find("service.etl") as ServiceNode | undefined;
  check(
    `[${environment}] resources are Postgres, api and etl`,
    db?.type === "database" && db.engine === "postgres" && !!api && !!etl && resources.length === 3,
    resources.map((r) => r.address).join(", "),
  );
  if (!api || !etl) continue;

  for (const service of [api, etl]) {
    const url = literal(service.variables?.DATABASE_URL);
    check(
      `[${environment}] ${service.name}: DATABASE_URL is Postgres's, with sslmode=require`,
      url === "${{Postgres.DATABASE_URL}}?sslmode=require",
      String(url),
    );
    check(
      `[${environment}] ${service.name}: built from the Dockerfile`,
      service.build?.builder === "DOCKERFILE" && service.build.dockerfilePath === "Dockerfile",
    );
    const secrets = Object.entries(service.variables ?? {}).filter(
      ([key, value]) => /KEY|SECRET|PASSWORD|TOKEN/.test(key) && value.type !== "preserve",
    );
    check(
      `[${environment}] ${service.name}: secrets are preserve(), never values`,
      secrets.length === 0,
      secrets.map(([key]) => key).join(", "),
    );
  }

  const d = api.deploy ?? {};
  check(`[${environment}] api: start command is exec form`, execForm(d.startCommand, "serve"), String(d.startCommand));
  check(
    `[${environment}] api: pre-deploy runs migrate, one exec-form command`,
    Array.isArray(d.preDeployCommand) &&
      d.preDeployCommand.length === 1 &&
      execForm(d.preDeployCommand[0], "migrate"),
    JSON.stringify(d.preDeployCommand),
  );
  check(`[${environment}] api: healthcheck is readiness`, d.healthcheckPath === "/api/v1/health", String(d.healthcheckPath));
  check(
    `[${environment}] api: drainingSeconds exceeds the shutdown grace (${shutdownGrace} s)`,
    typeof d.drainingSeconds === "number" && d.drainingSeconds > shutdownGrace,
    String(d.drainingSeconds),
  );
  check(`[${environment}] api: restarts on failure`, d.restartPolicyType === "ON_FAILURE");
  check(`[${environment}] api: no cron schedule`, d.cronSchedule == null);

  const e = etl.deploy ?? {};
  check(`[${environment}] etl: start command is exec form`, execForm(e.startCommand, "etl"), String(e.startCommand));
  check(`[${environment}] etl: has a cron schedule`, typeof e.cronSchedule === "string" && e.cronSchedule.trim().split(/\s+/).length === 5);
  check(`[${environment}] etl: no healthcheck`, e.healthcheckPath == null);
  check(`[${environment}] etl: never restarted`, e.restartPolicyType === "NEVER");
  check(
    `[${environment}] etl: drainingSeconds gives a run time to stop`,
    typeof e.drainingSeconds === "number" && e.drainingSeconds > 0,
    String(e.drainingSeconds),
  );

  if (environment === environments[0]) {
    sameAsConfigFile(api, "railway.json");
    sameAsConfigFile(etl, "railway.etl.json");
  }
}

// 3, not 1: the script tells failed assertions (already printed) from a crash.
process.exitCode = failures === 0 ? 0 : 3;
