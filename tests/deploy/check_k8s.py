#!/usr/bin/python3
"""Checks rendered Kubernetes manifests (k8svalidate -o output) beyond the Go types.

1. Custom resources of a group that k8svalidate has no Go types for (KEDA's
   keda.sh) are validated against the openAPIV3Schema of their CRD, as shipped
   in KEDA's own repository (the Go module github.com/kedacore/keda/v2). Like
   kubeconform's --strict, a field the schema does not declare is an error
   (the API server would silently prune it).
2. KEDA kafka triggers: every metadata key must be one KEDA's kafka scaler reads
   (the `keda:"name=..."` tags in pkg/scalers/kafka_scaler.go of the same module),
   enum values must be allowed, numbers numbers, and the scaler's own
   cross-field rules hold; authParams come from a TriggerAuthentication.
3. ferry's own consistency rules: grace period above the shutdown deadline,
   probes on the http port and the right paths, references to ConfigMaps,
   Secrets and their keys resolve, selectors select something, the ScaledObject
   agrees with worker.conf (group, topic, concurrency) and stays within the
   partition count, FERRY_* variables are settings the programs know.

Usage: check_k8s.py --keda-dir DIR [--known-env PROGRAM=FILE]... [--partitions N]
                    [--secrets secret.example.yaml] RENDERED.yaml...
"""
import argparse
import copy
import os
import re
import sys

import jsonschema
import yaml

errors = []


def fail(where, msg):
    errors.append(f"{where}: {msg}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def ident(o):
    return f"{o['kind']}/{o['metadata']['name']}"


# ---------------------------------------------------------------------------
# 1. CRD schemas

def strictify(schema):
    """additionalProperties: false wherever properties are declared and unknown
    fields are not explicitly preserved (what kubeconform --strict does)."""
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for k, v in schema.items():
            if k != "enum":
                strictify(v)
    elif isinstance(schema, list):
        for v in schema:
            strictify(v)
    return schema


def load_crds(directory):
    crds = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml")):
            continue
        for crd in load_all(os.path.join(directory, name)):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                schema = copy.deepcopy(v["schema"]["openAPIV3Schema"])
                # Every object has the standard metadata; the CRD leaves it open.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                crds[(f"{group}/{v['name']}", kind)] = strictify(schema)
    return crds


def check_crd_objects(objs, crds, groups):
    n = 0
    for o in objs:
        api = o.get("apiVersion", "")
        if api.split("/")[0] not in groups:
            continue
        schema = crds.get((api, o.get("kind")))
        if schema is None:
            fail(ident(o), f"no CRD schema for {api} {o.get('kind')}")
            continue
        v = jsonschema.Draft7Validator(schema)
        for e in sorted(v.iter_errors(o), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in e.absolute_path) or "(root)"
            fail(ident(o), f"CRD schema: {path}: {e.message}")
        n += 1
    return n


# ---------------------------------------------------------------------------
# 2. KEDA kafka scaler parameters

TAG = re.compile(r'`keda:"([^"]*)"`')


def kafka_params(keda_dir):
    """{name: {"order": set, "enum": [..] or None, "type": go type}}"""
    src = open(os.path.join(keda_dir, "pkg/scalers/kafka_scaler.go")).read()
    struct = re.search(r"type kafkaMetadata struct \{(.*?)\n\}", src, re.S)
    if not struct:
        raise SystemExit("check_k8s: kafkaMetadata not found in kafka_scaler.go")
    params = {}
    for line in struct.group(1).splitlines():
        m = TAG.search(line)
        if not m:
            continue
        fields = line.split()
        gotype = fields[1] if len(fields) > 1 else ""
        opts = dict(kv.split("=", 1) if "=" in kv else (kv, "") for kv in m.group(1).split(","))
        params[opts["name"]] = {
            "order": set(opts.get("order", "").split(";")),
            "enum": opts["enum"].split(";") if "enum" in opts else None,
            "type": gotype,
        }
    if "lagThreshold" not in params or "consumerGroup" not in params:
        raise SystemExit("check_k8s: could not read the kafka scaler's parameters")
    return params


def check_kafka_trigger(where, trig, params, auths):
    md = trig.get("metadata", {})
    for k, val in md.items():
        name = k[:-len("FromEnv")] if k.endswith("FromEnv") else k
        p = params.get(name)
        if p is None:
            fail(where, f"kafka trigger: unknown metadata key {k!r}")
            continue
        if k.endswith("FromEnv"):
            if "resolvedEnv" not in p["order"]:
                fail(where, f"kafka trigger: {name} cannot come from the environment")
            continue
        if "triggerMetadata" not in p["order"]:
            fail(where, f"kafka trigger: {k!r} belongs in a TriggerAuthentication, not metadata")
        if p["enum"] and val not in p["enum"]:
            fail(where, f"kafka trigger: {k}={val!r} not one of {p['enum']}")
        if p["type"] == "bool" and val not in ("true", "false"):
            fail(where, f"kafka trigger: {k}={val!r} is not true/false")
        if p["type"] in ("int", "int64") and not re.fullmatch(r"-?\d+", str(val)):
            fail(where, f"kafka trigger: {k}={val!r} is not an integer")
    given = set(md) | {k[:-len("FromEnv")] for k in md if k.endswith("FromEnv")}
    if "bootstrapServers" not in given or "consumerGroup" not in given:
        fail(where, "kafka trigger: bootstrapServers and consumerGroup are required")
    # The scaler's own cross-field rules (kafka_scaler.go, Validate()).
    if int(md.get("lagThreshold", "10")) <= 0:
        fail(where, "kafka trigger: lagThreshold must be positive")
    if int(md.get("activationLagThreshold", "0")) < 0:
        fail(where, "kafka trigger: activationLagThreshold must be non-negative")
    if md.get("limitToPartitionsWithLag") == "true":
        if md.get("allowIdleConsumers") == "true":
            fail(where, "kafka trigger: allowIdleConsumers and limitToPartitionsWithLag exclude each other")
        if not md.get("topic"):
            fail(where, "kafka trigger: limitToPartitionsWithLag needs topic")
    ref = trig.get("authenticationRef")
    if ref:
        ta = auths.get(ref["name"])
        if ta is None:
            fail(where, f"authenticationRef {ref['name']!r}: no TriggerAuthentication of that name")
        else:
            for t in ta["spec"].get("secretTargetRef", []):
                p = params.get(t["parameter"])
                if p is None or "authParams" not in p["order"]:
                    fail(ident(ta), f"parameter {t['parameter']!r} is not an auth parameter of the kafka scaler")
            if md.get("sasl") not in (None, "none"):
                names = {t["parameter"] for t in ta["spec"].get("secretTargetRef", [])}
                if not {"username", "password"} <= names:
                    fail(ident(ta), "sasl needs username and password")
    elif md.get("sasl") not in (None, "none"):
        fail(where, "sasl set without an authenticationRef")


# ---------------------------------------------------------------------------
# 3. ferry's consistency rules

def parse_conf(text):
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            conf[k.strip()] = v.strip()
    return conf


def by_kind(objs, kind):
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def selects(selector, labels):
    ml = (selector or {}).get("matchLabels", {})
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def container_env(c, configmaps):
    env = {e["name"]: e for e in c.get("env", [])}
    for src in c.get("envFrom", []):
        cm = configmaps.get(src.get("configMapRef", {}).get("name"))
        if cm:
            for k, v in cm.get("data", {}).items():
                env.setdefault(k, {"name": k, "value": v})
    return env


def check_ferry(objs, secrets, known_env, partitions):
    cms = by_kind(objs, "ConfigMap")
    deps = by_kind(objs, "Deployment")
    all_secrets = {**by_kind(secrets, "Secret"), **by_kind(objs, "Secret")}

    def secret_key(where, name, key, optional=False):
        s = all_secrets.get(name)
        if s is None:
            if not optional:
                fail(where, f"Secret {name!r} is neither rendered nor in the example")
            return
        keys = set(s.get("stringData", {})) | set(s.get("data", {}))
        if key not in keys and not optional:
            fail(where, f"Secret {name!r} has no key {key!r} (in the example)")

    confs = {}
    for name, d in deps.items():
        where = ident(d)
        pod = d["spec"]["template"]
        spec = pod["spec"]
        labels = pod["metadata"].get("labels", {})
        if not selects(d["spec"]["selector"], labels):
            fail(where, "selector does not match its own pod template")
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem"):
                fail(cw, "readOnlyRootFilesystem is not true")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            if "http" not in ports:
                fail(cw, "no container port named http")
            env = container_env(c, cms)
            for e in c.get("envFrom", []):
                ref = e.get("configMapRef", {}).get("name")
                if ref and ref not in cms:
                    fail(cw, f"envFrom ConfigMap {ref!r} is not rendered")
            prog = (c.get("command") or ["?"])[0]
            if known_env is not None and prog not in known_env:
                fail(cw, f"command {prog!r} is not one of {sorted(known_env)}")
            for k, e in env.items():
                if k.startswith("FERRY_") and known_env and k not in known_env.get(prog, set()):
                    fail(cw, f"environment {k} is no setting of {prog} (see its --help)")
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret_key(cw, ref["name"], ref["key"], ref.get("optional", False))
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref and ref["key"] not in cms.get(ref["name"], {}).get("data", {}):
                    fail(cw, f"configMapKeyRef {ref['name']}/{ref['key']} does not resolve")
            listen = env.get("FERRY_HTTP_LISTEN", {}).get("value", "")
            if not listen.endswith(f":{ports.get('http')}") or not listen.startswith("0.0.0.0:"):
                fail(cw, f"FERRY_HTTP_LISTEN={listen!r} is not 0.0.0.0:<the http port>")
            for probe, path in (("livenessProbe", "/healthz"), ("startupProbe", "/healthz"),
                                ("readinessProbe", "/readyz")):
                p = c.get(probe)
                if p is None:
                    fail(cw, f"no {probe}")
                    continue
                g = p.get("httpGet", {})
                if g.get("path") != path or g.get("port") != "http":
                    fail(cw, f"{probe} should GET {path} on port http, not {g}")
            if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits", {}).get("memory"):
                fail(cw, "resources: requests and a memory limit are expected")
            mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
            for m in mounts:
                if m not in vols:
                    fail(cw, f"volumeMount {m!r} has no volume")
            # The config file the program is given must be mounted, and must exist.
            args = c.get("args", [])
            conf_path = args[args.index("--config") + 1] if "--config" in args else None
            if conf_path:
                mdir, base = os.path.split(conf_path)
                m = next((m for m in mounts.values() if m["mountPath"] == mdir), None)
                v = vols.get(m["name"]) if m else None
                cm = cms.get(v.get("configMap", {}).get("name")) if v else None
                items = {i["path"]: i["key"] for i in (v or {}).get("configMap", {}).get("items", [])}
                key = items.get(base, base)
                if not cm or key not in cm.get("data", {}):
                    fail(cw, f"--config {conf_path} is not mounted from a rendered ConfigMap")
                else:
                    conf = parse_conf(cm["data"][key])
                    for k, e in env.items():  # env wins over the file
                        if k.startswith("FERRY_") and "value" in e:
                            conf[k[6:].lower().replace("_", ".")] = e["value"]
                    confs[name] = conf
            # Files the settings point at must be on a mounted volume.
            for k in ("FERRY_REDIS_PASSWORD_FILE", "FERRY_HTTP_TOKEN_FILE", "FERRY_S3_CREDENTIALS_FILE"):
                path = env.get(k, {}).get("value")
                if not path:
                    continue
                mdir, base = os.path.split(path)
                m = next((m for m in mounts.values() if m["mountPath"] == mdir), None)
                v = vols.get(m["name"]) if m else None
                if not v or "secret" not in v:
                    fail(cw, f"{k}={path} is not on a mounted Secret")
                    continue
                items = {i["path"]: i["key"] for i in v["secret"].get("items", [])}
                secret_key(cw, v["secret"]["secretName"], items.get(base, base))
        for v in vols.values():
            if "configMap" in v and v["configMap"]["name"] not in cms:
                fail(where, f"volume {v['name']}: ConfigMap {v['configMap']['name']!r} is not rendered")
            if "secret" in v:
                for i in v["secret"].get("items", []):
                    secret_key(where, v["secret"]["secretName"], i["key"], v["secret"].get("optional", False))
        conf = confs.get(name, {})
        if "shutdown.timeout_ms" in conf or name == "ferry-worker":
            timeout_s = int(conf.get("shutdown.timeout_ms", "30000")) / 1000
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if grace < timeout_s + 5:
                fail(where, f"terminationGracePeriodSeconds {grace} is not above "
                            f"shutdown.timeout_ms ({timeout_s:g} s) + 5 s")

    for o in objs:
        where = ident(o)
        if o["kind"] == "PodDisruptionBudget":
            if not any(selects(o["spec"]["selector"], d["spec"]["template"]["metadata"].get("labels", {}))
                       for d in deps.values()):
                fail(where, "selects no Deployment's pods")
        if o["kind"] in ("Service", "ServiceMonitor", "PodMonitor"):
            sel = o["spec"]["selector"]
            sel = sel if o["kind"] != "Service" else {"matchLabels": sel}
            if o["kind"] == "ServiceMonitor":
                targets = [s for s in by_kind(objs, "Service").values()
                           if selects(sel, s["metadata"].get("labels", {}))]
                ports = {p.get("name") for s in targets for p in s["spec"]["ports"]}
                eps = o["spec"]["endpoints"]
            else:
                targets = [d for d in deps.values()
                           if selects(sel, d["spec"]["template"]["metadata"].get("labels", {}))]
                ports = {p.get("name") for d in targets
                         for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                eps = o["spec"].get("podMetricsEndpoints", [])
                if o["kind"] == "Service":
                    eps = [{"port": p["targetPort"]} for p in o["spec"]["ports"]]
            if not targets:
                fail(where, "selector selects nothing")
            for ep in eps:
                if ep.get("port") not in ports:
                    fail(where, f"port {ep.get('port')!r} is not a port name of what it selects")
        if o["kind"] == "ScaledObject":
            spec = o["spec"]
            target = spec["scaleTargetRef"]
            d = deps.get(target["name"]) if target.get("kind", "Deployment") == "Deployment" else None
            if d is None:
                fail(where, f"scaleTargetRef {target['name']!r} is no rendered Deployment")
                continue
            if "replicas" in d["spec"]:
                fail(ident(d), "sets replicas although a ScaledObject scales it")
            lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
            if not 0 <= lo <= hi:
                fail(where, f"minReplicaCount {lo} > maxReplicaCount {hi}")
            if hi > partitions:
                fail(where, f"maxReplicaCount {hi} exceeds the {partitions} partitions of the onboard topic")
            conf = confs.get(target["name"], {})
            env = container_env(d["spec"]["template"]["spec"]["containers"][0], cms)
            for t in spec["triggers"]:
                if t["type"] != "kafka":
                    continue
                md = t["metadata"]
                if md.get("consumerGroup") != conf.get("worker.group", "ferry-workers"):
                    fail(where, f"consumerGroup {md.get('consumerGroup')!r} is not the workers' worker.group")
                if md.get("topic") and md.get("topic") != conf.get("topic.onboard", "ferry.dataset.onboard"):
                    fail(where, f"topic {md.get('topic')!r} is not the workers' topic.onboard")
                if md.get("lagThreshold") != conf.get("worker.concurrency", "2"):
                    fail(where, f"lagThreshold {md.get('lagThreshold')} != worker.concurrency "
                                f"{conf.get('worker.concurrency', '2')}")
                for k, v in md.items():
                    if k.endswith("FromEnv") and v not in env:
                        fail(where, f"{k}: {v} is not in the target container's environment")
                if md.get("excludePersistentLag") == "true":
                    fail(where, "excludePersistentLag would scale in under long migrations")

    for s in secrets:
        for k, v in s.get("stringData", {}).items():
            if not str(v).startswith("PLACEHOLDER"):
                fail(ident(s), f"example value of {k!r} is not a PLACEHOLDER-... value")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keda-dir", required=True, help="the github.com/kedacore/keda/v2 module directory")
    ap.add_argument("--known-env", action="append", default=[], metavar="PROGRAM=FILE",
                    help="the FERRY_* variables PROGRAM accepts, one a line (repeatable); "
                         "a container's command[0] picks its program")
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--secrets", help="the example Secrets file")
    ap.add_argument("rendered", nargs="+")
    a = ap.parse_args()

    crds = load_crds(os.path.join(a.keda_dir, "config/crd/bases"))
    params = kafka_params(a.keda_dir)
    known = None
    if a.known_env:
        known = {}
        for spec in a.known_env:
            prog, path = spec.split("=", 1)
            known[prog] = {l.strip() for l in open(path) if l.strip()}
    secrets = load_all(a.secrets) if a.secrets else []
    ncrd = ntrig = 0
    for path in a.rendered:
        before = len(errors)
        objs = load_all(path)
        ncrd += check_crd_objects(objs, crds, {"keda.sh"})
        auths = by_kind(objs, "TriggerAuthentication")
        for o in objs:
            if o["kind"] == "ScaledObject":
                for t in o["spec"]["triggers"]:
                    if t["type"] == "kafka":
                        ntrig += 1
                        check_kafka_trigger(ident(o), t, params, auths)
        check_ferry(objs, secrets, known, a.partitions)
        errors[before:] = [f"{path}: {e}" for e in errors[before:]]
    for e in errors:
        print(f"check_k8s: {e}", file=sys.stderr)
    print(f"check_k8s: {len(a.rendered)} rendered sets, {ncrd} KEDA objects against their CRD, "
          f"{ntrig} kafka triggers against the scaler's parameters, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
