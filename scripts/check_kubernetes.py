"""Checks the Kubernetes manifests of deploy/kubernetes without a cluster (scripts/check-kubernetes.sh).

Renders the base and every overlay with `kubectl kustomize`, validates every object against the
Kubernetes OpenAPI schemas of pinned versions (kubernetes-validate, strict: unknown fields are
errors), then checks each overlay: the restricted Pod Security Standard field by field for every
pod template, and what the manifests must agree on (grace periods, images, probes, ports,
secrets, network policies, deploy order).

Prints one line per check: "ok<TAB>name" or "FAIL<TAB>name: why". Exits 0 when every check
passed, 3 when one failed (already printed), anything else on a crash.

Usage: check_kubernetes.py ROOT --kubectl PATH --keys K1,K2,... --secrets K1,K2,... --grace N
       --etl-deadline N --etl-schedule CRON
"""

import argparse
import glob
import ipaddress
import json
import os
import re
import subprocess
import sys

import kubernetes_validate
import yaml

# The oldest version the manifests need (lifecycle.preStop.sleep is on by default from 1.30)
# and the newest whose schemas the pinned kubernetes-validate carries.
SCHEMA_VERSIONS = ["1.30.0", "1.37.0"]

UID = 65532
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
WORKLOADS = {
    # component: (kind, name, args)
    "api": ("Deployment", "sigmasight-api", ["serve"]),
    "migrate": ("Job", "sigmasight-migrate", ["migrate"]),
    "etl": ("CronJob", "sigmasight-etl", ["etl"]),
}
# The Secret that the secret settings (`secret: true` in src/config/settings.rs, given as
# --secrets) come from, and only from.
SECRET_NAME = "sigmasight"
# The secret settings each workload gets, and no other: least privilege between the three.
SECRETS_NEEDED = {
    "api": {"DATABASE_URL", "SECRET_KEY", "SECRET_KEY_PREVIOUS"},
    "etl": {"DATABASE_URL", "FMP_API_KEY", "POLYGON_API_KEY"},
    "migrate": {"DATABASE_URL"},
}
# The Secret key each workload's DATABASE_URL comes from: the app role, or the owner to migrate.
DATABASE_SECRET_KEY = {"api": "DATABASE_URL", "etl": "DATABASE_URL", "migrate": "DATABASE_MIGRATION_URL"}
# A registry host (and port), a path, a digest, and no tag.
DIGEST_IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$")
# The label selectors of docs/kubernetes.md, "Deploying": first the migration and what it needs,
# then, once it has completed, everything else.
MIGRATE_STEP = ("notin", {"api", "etl"})
ROLLOUT_STEP = ("!=", {"migrate"})

# The restricted Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-standards).
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
PRIVATE_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]

failures = 0


def report(ok, name, why=""):
    global failures
    if ok:
        print(f"ok\t{name}")
    else:
        failures += 1
        print(f"FAIL\t{name}" + (f": {why}" if why else ""))


def get(obj, *path, default=None):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def render(kubectl, directory):
    result = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        report(False, f"kubectl kustomize {directory}", result.stderr.strip())
        return None
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    report(bool(objects), f"kubectl kustomize {directory}: {len(objects)} objects")
    return objects


def ref(obj):
    return f"{obj.get('kind')}/{get(obj, 'metadata', 'name')}"


def validate_schemas(label, objects):
    for version in SCHEMA_VERSIONS:
        problems = []
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except Exception as error:  # every kind of refusal is a finding, named below
                message = getattr(error, "message", None) or str(error)
                where = "/".join(str(p) for p in getattr(error, "path", []) or [])
                problems.append(f"{ref(obj)}: {where + ': ' if where else ''}{message}")
        report(
            not problems,
            f"{label}: every object valid against the Kubernetes {version} schemas (strict)",
            "; ".join(problems),
        )


# --- pod templates ------------------------------------------------------------------------

def pod_template(obj):
    kind = obj.get("kind")
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return get(obj, "spec", "template")
    if kind == "CronJob":
        return get(obj, "spec", "jobTemplate", "spec", "template")
    return None


def all_containers(spec):
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            yield container


def container_value(pod_spec, container, key):
    """A security setting of a container: its own, else the pod's (runAsUser, runAsNonRoot, seccomp...)."""
    own = get(container, "securityContext", key)
    return own if own is not None else get(pod_spec, "securityContext", key)


def restricted_pss(template):
    """The restricted Pod Security Standard's controls: {field: [violations]} for one pod template."""
    spec = template.get("spec") or {}
    pod_sc = spec.get("securityContext") or {}
    containers = list(all_containers(spec))
    found = {}

    def bad(field, why):
        found.setdefault(field, []).append(why)

    # Baseline.
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            bad("host namespaces", f"{key}: true")
    if get(pod_sc, "windowsOptions", "hostProcess"):
        bad("HostProcess", "pod windowsOptions.hostProcess: true")
    for c in containers:
        if get(c, "securityContext", "windowsOptions", "hostProcess"):
            bad("HostProcess", f"{c['name']}: windowsOptions.hostProcess: true")
        if get(c, "securityContext", "privileged"):
            bad("privileged", f"{c['name']}: privileged: true")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                bad("hostPort", f"{c['name']}: hostPort {port['hostPort']}")
        if get(c, "securityContext", "procMount") not in (None, "Default"):
            bad("procMount", f"{c['name']}: procMount {get(c, 'securityContext', 'procMount')}")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for handler in ("httpGet", "tcpSocket"):
                if get(c, probe, handler, "host"):
                    bad("probe and lifecycle hosts", f"{c['name']}: {probe}.{handler}.host is set")
        for hook in ("postStart", "preStop"):
            for handler in ("httpGet", "tcpSocket"):
                if get(c, "lifecycle", hook, handler, "host"):
                    bad("probe and lifecycle hosts", f"{c['name']}: lifecycle.{hook}.{handler}.host is set")
    for volume in spec.get("volumes") or []:
        types = set(volume) - {"name"}
        if "hostPath" in types:
            bad("hostPath volumes", f"volume {volume.get('name')} is a hostPath")
        if not types <= RESTRICTED_VOLUME_TYPES:
            bad("volume types", f"volume {volume.get('name')}: {', '.join(sorted(types - RESTRICTED_VOLUME_TYPES))}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            bad("sysctls", f"{sysctl.get('name')} is not a safe sysctl")
    annotations = get(template, "metadata", "annotations", default={}) or {}
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/"):
            if value != "runtime/default" and not value.startswith("localhost/"):
                bad("AppArmor", f"annotation {key}: {value}")
    for owner, sc in [("pod", pod_sc)] + [(c["name"], c.get("securityContext") or {}) for c in containers]:
        apparmor = get(sc, "appArmorProfile", "type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            bad("AppArmor", f"{owner}: appArmorProfile {apparmor}")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            bad("SELinux", f"{owner}: seLinuxOptions {json.dumps(selinux, sort_keys=True)}")

    # Restricted.
    for c in containers:
        name = c["name"]
        if get(c, "securityContext", "allowPrivilegeEscalation") is not False:
            bad("allowPrivilegeEscalation", f"{name}: allowPrivilegeEscalation is "
                f"{json.dumps(get(c, 'securityContext', 'allowPrivilegeEscalation'))}, not false")
        if container_value(spec, c, "runAsNonRoot") is not True:
            bad("runAsNonRoot", f"{name}: runAsNonRoot is not true (container or pod)")
        if container_value(spec, c, "runAsUser") == 0:
            bad("runAsUser", f"{name}: runs as uid 0")
        seccomp = get(c, "securityContext", "seccompProfile", "type") or get(pod_sc, "seccompProfile", "type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad("seccompProfile", f"{name}: seccomp profile {seccomp!r}, not RuntimeDefault or Localhost")
        capabilities = get(c, "securityContext", "capabilities", default={}) or {}
        if "ALL" not in (capabilities.get("drop") or []):
            bad("capabilities", f"{name}: capabilities.drop does not hold ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            bad("capabilities", f"{name}: adds {', '.join(sorted(added))}")
    if pod_sc.get("runAsNonRoot") is False:
        bad("runAsNonRoot", "pod: runAsNonRoot: false")
    if pod_sc.get("runAsUser") == 0:
        bad("runAsUser", "pod: runAsUser: 0")
    if get(pod_sc, "seccompProfile", "type") == "Unconfined":
        bad("seccompProfile", "pod: seccomp profile Unconfined")
    return found


RESTRICTED_FIELDS = [
    "host namespaces", "HostProcess", "privileged", "capabilities", "hostPath volumes", "hostPort",
    "AppArmor", "SELinux", "procMount", "seccompProfile", "sysctls", "probe and lifecycle hosts",
    "volume types", "allowPrivilegeEscalation", "runAsNonRoot", "runAsUser",
]


def hardening(template):
    """What the issue asks beyond the restricted standard: {field: [violations]}."""
    spec = template.get("spec") or {}
    found = {}

    def bad(field, why):
        found.setdefault(field, []).append(why)

    if spec.get("automountServiceAccountToken") is not False:
        bad("no service-account token", "automountServiceAccountToken is not false")
    mounted = set()
    for c in all_containers(spec):
        name = c["name"]
        if container_value(spec, c, "runAsUser") != UID or container_value(spec, c, "runAsGroup") != UID:
            bad(f"uid and gid {UID}", f"{name}: runAsUser {container_value(spec, c, 'runAsUser')!r}, "
                f"runAsGroup {container_value(spec, c, 'runAsGroup')!r}")
        if get(c, "securityContext", "readOnlyRootFilesystem") is not True:
            bad("readOnlyRootFilesystem", f"{name}: readOnlyRootFilesystem is not true")
        resources = c.get("resources") or {}
        missing = [f"requests.{r}" for r in ("cpu", "memory") if not get(resources, "requests", r)]
        missing += [f"limits.{r}" for r in ("cpu", "memory") if not get(resources, "limits", r)]
        if missing:
            bad("resources", f"{name}: no {', '.join(missing)}")
        mounted |= {(m.get("name"), m.get("mountPath")) for m in c.get("volumeMounts") or []}
    empty_dirs = {v.get("name") for v in spec.get("volumes") or [] if "emptyDir" in v}
    if not any(path == "/tmp" and name in empty_dirs for name, path in mounted):
        bad("writable /tmp", "no emptyDir mounted on /tmp")
    return found


HARDENING_FIELDS = [
    "no service-account token", f"uid and gid {UID}", "readOnlyRootFilesystem", "resources",
    "writable /tmp",
]


# --- environment --------------------------------------------------------------------------

def environment(container, by_name):
    """{NAME: ("value", v) | ("secret", secret, key) | ("configMap", map, key)}, as the kubelet
    resolves it: `env` over `envFrom`, a later envFrom over an earlier one."""
    resolved = {}
    for source in container.get("envFrom") or []:
        name = get(source, "configMapRef", "name")
        if name is not None:
            for key, value in (get(by_name.get(("ConfigMap", name)), "data", default={}) or {}).items():
                resolved[key] = ("configMap", name, key, value)
        if get(source, "secretRef", "name") is not None:
            resolved["*"] = ("secretRef", get(source, "secretRef", "name"))
    for entry in container.get("env") or []:
        if "value" in entry:
            resolved[entry["name"]] = ("value", entry["value"])
        elif get(entry, "valueFrom", "secretKeyRef") is not None:
            s = entry["valueFrom"]["secretKeyRef"]
            resolved[entry["name"]] = ("secret", s.get("name"), s.get("key"))
        elif get(entry, "valueFrom", "configMapKeyRef") is not None:
            m = entry["valueFrom"]["configMapKeyRef"]
            value = get(by_name.get(("ConfigMap", m.get("name"))), "data", m.get("key"))
            resolved[entry["name"]] = ("configMap", m.get("name"), m.get("key"), value)
        else:
            resolved[entry["name"]] = ("other",)
    return resolved


def plain_value(env, name, default):
    entry = env.get(name)
    if entry is None:
        return default
    if entry[0] == "value":
        return entry[1]
    if entry[0] == "configMap":
        return entry[3]
    return None


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- selectors ----------------------------------------------------------------------------

def matches(match_labels, labels):
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def selected_by_step(obj, step):
    """Whether `kubectl apply -l` with this selector applies the object. Both `notin` and `!=`
    also select objects that do not carry the label at all."""
    _operator, values = step
    return get(obj, "metadata", "labels", COMPONENT_LABEL) not in values


# --- one overlay --------------------------------------------------------------------------

def check_overlay(label, objects, args):
    keys = set(args.keys.split(","))
    secret_settings = {k.upper() for k in args.secrets.split(",")}
    by_name = {(o.get("kind"), get(o, "metadata", "name")): o for o in objects}
    workloads = {}
    for component, (kind, name, _args) in WORKLOADS.items():
        obj = by_name.get((kind, name))
        report(obj is not None, f"{label}: {kind}/{name} is rendered")
        if obj is not None:
            workloads[component] = obj

    report(
        not any(o.get("kind") == "Secret" for o in objects),
        f"{label}: no Secret in the manifests (secrets come from the Secret '{SECRET_NAME}', created apart)",
    )

    # Every pod template of the overlay, whatever its kind.
    templates = [(ref(o), pod_template(o)) for o in objects if pod_template(o) is not None]
    names = ", ".join(r for r, _ in templates)
    for fields, check, title in (
        (RESTRICTED_FIELDS, restricted_pss, "restricted Pod Security Standard"),
        (HARDENING_FIELDS, hardening, "hardening"),
    ):
        results = [(r, check(t)) for r, t in templates]
        for field in fields:
            problems = [f"{r}: {why}" for r, found in results for why in found.get(field, [])]
            report(not problems, f"{label}: {title}, {field} ({names})", "; ".join(problems))

    # Images: by digest, one image for all three.
    images = {}
    for component, obj in workloads.items():
        spec = pod_template(obj).get("spec") or {}
        for c in all_containers(spec):
            images.setdefault(c.get("image"), []).append(f"{ref(obj)} {c['name']}")
            report(
                bool(DIGEST_IMAGE.match(c.get("image") or "")),
                f"{label}: {ref(obj)} {c['name']} runs an image by digest, with no tag",
                repr(c.get("image")),
            )
    report(len(images) == 1, f"{label}: one image for the API, the migration and the ETL",
           "; ".join(f"{image}: {', '.join(users)}" for image, users in images.items()))

    # Commands, settings and secrets per workload.
    api_port = None
    for component, obj in workloads.items():
        spec = pod_template(obj).get("spec") or {}
        containers = spec.get("containers") or []
        report(len(containers) == 1, f"{label}: {ref(obj)} has one container", str(len(containers)))
        if not containers:
            continue
        c = containers[0]
        expected_args = WORKLOADS[component][2]
        report(
            "command" not in c and c.get("args") == expected_args,
            f"{label}: {ref(obj)} runs the image's entrypoint with {expected_args}",
            f"command {c.get('command')!r}, args {c.get('args')!r}",
        )
        env = environment(c, by_name)
        unknown = sorted(k for k in env if k != "*" and k.lower() not in keys)
        report(not unknown, f"{label}: {ref(obj)} sets only settings of src/config/settings.rs", ", ".join(unknown))
        leaks = sorted(k for k in secret_settings & set(env) if env[k][0] != "secret")
        if "*" in env:
            leaks.append(f"envFrom the Secret {env['*'][1]} (every key)")
        report(not leaks, f"{label}: {ref(obj)} takes its secrets from secretKeyRef only", ", ".join(leaks))
        extra = sorted(secret_settings & set(env) - SECRETS_NEEDED[component])
        report(not extra, f"{label}: {ref(obj)} gets no secret it does not use "
               f"(only {', '.join(sorted(SECRETS_NEEDED[component]))})", ", ".join(extra))
        wrong_secret = sorted(k for k in secret_settings & set(env) if env[k][0] == "secret" and env[k][1] != SECRET_NAME)
        report(not wrong_secret, f"{label}: {ref(obj)} reads the Secret '{SECRET_NAME}'", ", ".join(wrong_secret))
        db = env.get("DATABASE_URL")
        want = DATABASE_SECRET_KEY[component]
        report(
            db is not None and db[0] == "secret" and db[2] == want and "DATABASE_MIGRATION_URL" not in env,
            f"{label}: {ref(obj)} connects with the Secret's {want}, and nothing else gives it a database URL",
            repr(db),
        )
        if component == "api":
            api_port = check_api(label, obj, c, env, args)
        if component == "etl":
            check_etl(label, obj, env, args)
        if component == "migrate":
            check_migrate(label, obj)

    if "api" in workloads:
        check_api_objects(label, workloads["api"], by_name, api_port)
    check_network_policies(label, objects, workloads)
    check_deploy_order(label, objects, workloads)


def check_api(label, obj, c, env, args):
    spec = pod_template(obj)["spec"]
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    port_setting = as_int(plain_value(env, "PORT", "8000"))
    report(
        list(ports.values()) == [port_setting],
        f"{label}: {ref(obj)} exposes exactly its PORT ({port_setting})",
        f"containerPorts {ports}",
    )
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/api/v1/health")):
        http = get(c, probe, "httpGet") or {}
        port = http.get("port")
        port = ports.get(port) if isinstance(port, str) else port
        report(
            http.get("path") == path and port == port_setting and http.get("scheme", "HTTP") == "HTTP",
            f"{label}: {ref(obj)} {probe} is GET {path} on port {port_setting}",
            json.dumps(http, sort_keys=True),
        )
    report(
        str(plain_value(env, "MIGRATE_ON_START", "true")).lower() == "false",
        f"{label}: {ref(obj)} never migrates (MIGRATE_ON_START=false: the Job does)",
    )
    grace = as_int(plain_value(env, "SHUTDOWN_GRACE_SECONDS", str(args.grace)))
    pre_stop = get(c, "lifecycle", "preStop") or {}
    sleep = as_int(get(pre_stop, "sleep", "seconds"))
    period = as_int(spec.get("terminationGracePeriodSeconds", 30))
    report(sleep is not None and sleep > 0, f"{label}: {ref(obj)} preStop sleeps before SIGTERM",
           json.dumps(pre_stop, sort_keys=True))
    report(
        None not in (grace, sleep, period) and period > (sleep or 0) + (grace or 0),
        f"{label}: {ref(obj)} terminationGracePeriodSeconds ({period}) > preStop sleep ({sleep}) "
        f"+ SHUTDOWN_GRACE_SECONDS ({grace})",
    )
    return port_setting


def check_api_objects(label, deployment, by_name, api_port):
    template_labels = get(deployment, "spec", "template", "metadata", "labels", default={}) or {}
    replicas = get(deployment, "spec", "replicas")
    report(replicas == 3, f"{label}: {ref(deployment)} has 3 replicas", repr(replicas))
    report(
        get(deployment, "spec", "strategy", "rollingUpdate", "maxUnavailable") == 0,
        f"{label}: {ref(deployment)} rolls out without taking a serving pod away first (maxUnavailable 0)",
    )
    hpas = [o for o in by_name.values() if o.get("kind") == "HorizontalPodAutoscaler"
            and get(o, "spec", "scaleTargetRef", "name") == get(deployment, "metadata", "name")
            and get(o, "spec", "scaleTargetRef", "kind") == "Deployment"]
    report(len(hpas) == 1, f"{label}: one HorizontalPodAutoscaler scales {ref(deployment)}", str(len(hpas)))
    for hpa in hpas:
        low, high = get(hpa, "spec", "minReplicas"), get(hpa, "spec", "maxReplicas")
        report(low == replicas and isinstance(high, int) and high > low,
               f"{label}: {ref(hpa)} scales from the Deployment's {replicas} replicas up", f"{low}..{high}")
    pdbs = [o for o in by_name.values() if o.get("kind") == "PodDisruptionBudget"
            and matches(get(o, "spec", "selector", "matchLabels"), template_labels)]
    report(len(pdbs) == 1, f"{label}: one PodDisruptionBudget covers {ref(deployment)}'s pods", str(len(pdbs)))
    for pdb in pdbs:
        spec = pdb.get("spec") or {}
        budget = spec.get("maxUnavailable", None)
        report(budget == 1 or (isinstance(spec.get("minAvailable"), int) and 0 < spec["minAvailable"] < (replicas or 0)),
               f"{label}: {ref(pdb)} lets a drain proceed one pod at a time", json.dumps(spec, sort_keys=True))
    services = [o for o in by_name.values() if o.get("kind") == "Service"
                and matches(get(o, "spec", "selector"), template_labels)]
    report(len(services) == 1, f"{label}: one Service selects {ref(deployment)}'s pods", str(len(services)))
    container = get(deployment, "spec", "template", "spec", "containers", 0, default={})
    named = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    for service in services:
        targets = [p.get("targetPort") for p in get(service, "spec", "ports", default=[])]
        resolved = [named.get(t) if isinstance(t, str) else t for t in targets]
        report(resolved == [api_port], f"{label}: {ref(service)} targets the API port ({api_port})", repr(targets))


def check_etl(label, cronjob, env, args):
    spec = cronjob.get("spec") or {}
    job = get(spec, "jobTemplate", "spec", default={}) or {}
    deadline = as_int(plain_value(env, "ETL_DEADLINE_SECONDS", str(args.etl_deadline)))
    report(spec.get("concurrencyPolicy") == "Forbid", f"{label}: {ref(cronjob)} concurrencyPolicy is Forbid",
           repr(spec.get("concurrencyPolicy")))
    report(spec.get("schedule") == args.etl_schedule,
           f"{label}: {ref(cronjob)} runs on Railway's schedule ({args.etl_schedule}, railway.etl.json)",
           repr(spec.get("schedule")))
    report(spec.get("timeZone") in ("Etc/UTC", "UTC"), f"{label}: {ref(cronjob)} schedule is in UTC",
           repr(spec.get("timeZone")))
    report(isinstance(spec.get("startingDeadlineSeconds"), int),
           f"{label}: {ref(cronjob)} has a startingDeadlineSeconds", repr(spec.get("startingDeadlineSeconds")))
    active = job.get("activeDeadlineSeconds")
    report(
        isinstance(active, int) and deadline is not None and active > deadline,
        f"{label}: {ref(cronjob)} activeDeadlineSeconds ({active}) > ETL_DEADLINE_SECONDS ({deadline})",
    )
    report(job.get("backoffLimit") == 0 and get(job, "template", "spec", "restartPolicy") == "Never",
           f"{label}: {ref(cronjob)} never retries a run (backoffLimit 0, restartPolicy Never)")


def check_migrate(label, job):
    spec = job.get("spec") or {}
    report(spec.get("backoffLimit") == 0 and get(spec, "template", "spec", "restartPolicy") == "Never",
           f"{label}: {ref(job)} runs once (backoffLimit 0, restartPolicy Never)")
    report(isinstance(spec.get("activeDeadlineSeconds"), int), f"{label}: {ref(job)} has an activeDeadlineSeconds")


def show(ports):
    return ", ".join(f"{port}/{protocol}" for protocol, port in sorted(ports, key=str)) or "none"


def rule_ports(rule):
    return {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports") or []}


def is_dns_peer(peer):
    return (get(peer, "namespaceSelector", "matchLabels") == {"kubernetes.io/metadata.name": "kube-system"}
            and get(peer, "podSelector", "matchLabels") == {"k8s-app": "kube-dns"})


def public_only(peer):
    block = peer.get("ipBlock")
    if not block:
        return False
    network = ipaddress.ip_network(block["cidr"])
    excepted = [ipaddress.ip_network(n) for n in block.get("except") or []]
    if network.version == 4:
        return all(any(p.subnet_of(e) for e in excepted) for p in PRIVATE_V4 if p.subnet_of(network))
    return any(ipaddress.ip_network("fc00::/7").subnet_of(e) for e in excepted) or network.is_global


def check_network_policies(label, objects, workloads):
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    dns = {("UDP", 53), ("TCP", 53)}
    database = {("TCP", 5432)}
    for component, obj in workloads.items():
        template = pod_template(obj)
        labels = get(template, "metadata", "labels", default={}) or {}
        mine = [p for p in policies if matches(get(p, "spec", "podSelector", "matchLabels"), labels)]
        report(len(mine) == 1, f"{label}: one NetworkPolicy selects {ref(obj)}'s pods", str(len(mine)))
        if len(mine) != 1:
            continue
        policy = mine[0]
        spec = policy.get("spec") or {}
        report(set(spec.get("policyTypes") or []) == {"Ingress", "Egress"},
               f"{label}: {ref(policy)} restricts both ingress and egress", repr(spec.get("policyTypes")))
        container = get(template, "spec", "containers", 0, default={})
        container_ports = {(p.get("protocol", "TCP"), p.get("containerPort")) for p in container.get("ports") or []}
        named = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        ingress = spec.get("ingress") or []
        ingress_ports = set()
        for rule in ingress:
            for protocol, port in rule_ports(rule) or {("any", "any")}:
                ingress_ports.add((protocol, named.get(port, port)))
        if component == "api":
            report(ingress_ports == container_ports and container_ports,
                   f"{label}: {ref(policy)} lets in the API's container port only",
                   f"ingress ports {show(ingress_ports)}, container ports {show(container_ports)}")
        else:
            report(not ingress, f"{label}: {ref(policy)} lets nothing in ({component} serves nothing)", repr(ingress))
        egress = spec.get("egress") or []
        allowed = set()
        problems = []
        for rule in egress:
            ports = rule_ports(rule)
            peers = rule.get("to") or []
            if not ports or not peers:
                problems.append(f"a rule without {'ports' if not ports else 'peers'}: {json.dumps(rule, sort_keys=True)}")
            elif ports == dns:
                if not all(is_dns_peer(p) for p in peers):
                    problems.append("DNS to something other than kube-dns in kube-system")
            elif ports == database:
                if any("ipBlock" in p and ipaddress.ip_network(p["ipBlock"]["cidr"]).prefixlen == 0 for p in peers):
                    problems.append("PostgreSQL to any address")
            elif ports == {("TCP", 443)} and component == "etl":
                if not all(public_only(p) for p in peers):
                    problems.append("HTTPS to a private range")
            else:
                problems.append(f"ports {show(ports)} are not this workload's")
            allowed |= ports
        want = dns | database | ({("TCP", 443)} if component == "etl" else set())
        report(not problems and allowed == want,
               f"{label}: {ref(policy)} lets out DNS and PostgreSQL{' and HTTPS to public addresses' if component == 'etl' else ''} only",
               "; ".join(problems) or f"allowed {show(allowed)}")


def check_deploy_order(label, objects, workloads):
    first = [o for o in objects if selected_by_step(o, MIGRATE_STEP)]
    second = [o for o in objects if selected_by_step(o, ROLLOUT_STEP)]
    first_refs = {ref(o) for o in first}
    migrate = workloads.get("migrate")
    needs = set()
    if migrate is not None:
        spec = pod_template(migrate)["spec"]
        needs.add(f"ServiceAccount/{spec.get('serviceAccountName', 'default')}")
        for policy in objects:
            if policy.get("kind") == "NetworkPolicy" and matches(
                    get(policy, "spec", "podSelector", "matchLabels"), get(pod_template(migrate), "metadata", "labels")):
                needs.add(ref(policy))
        needs.add(ref(migrate))
    if needs and "ServiceAccount/default" in needs:
        needs.discard("ServiceAccount/default")
    report(needs <= first_refs and not any(ref(workloads[c]) in first_refs for c in ("api", "etl") if c in workloads),
           f"{label}: deploy step 1 (-l '{COMPONENT_LABEL} notin (api,etl)') applies the migration Job and what it needs, "
           "and neither the API nor the ETL",
           f"applies {sorted(first_refs)}")
    missing = {ref(o) for o in objects} - first_refs - {ref(o) for o in second}
    report(not missing and (migrate is None or ref(migrate) not in {ref(o) for o in second}),
           f"{label}: deploy step 2 (-l '{COMPONENT_LABEL}!=migrate') applies everything else, not the Job again",
           f"never applied: {sorted(missing)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--secrets", required=True)
    parser.add_argument("--grace", type=int, required=True)
    parser.add_argument("--etl-deadline", type=int, required=True)
    parser.add_argument("--etl-schedule", required=True)
    args = parser.parse_args()

    secret_settings = {k.upper() for k in args.secrets.split(",")}
    not_secret = sorted(set().union(*SECRETS_NEEDED.values()) - secret_settings)
    report(not not_secret, "the secrets each workload needs are secret settings of src/config/settings.rs",
           ", ".join(not_secret))

    base = os.path.join(args.root, "base")
    objects = render(args.kubectl, base)
    if objects is not None:
        validate_schemas("base", objects)
    overlays = sorted(glob.glob(os.path.join(args.root, "overlays", "*", "kustomization.yaml")))
    report(bool(overlays), f"{args.root}/overlays holds at least one overlay")
    for path in overlays:
        directory = os.path.dirname(path)
        label = os.path.relpath(directory, args.root)
        objects = render(args.kubectl, directory)
        if objects is None:
            continue
        validate_schemas(label, objects)
        check_overlay(label, objects, args)
    return 3 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
