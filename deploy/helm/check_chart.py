"""Lints and renders the chart for every flavor x tenant and checks the rendered objects.

Run by deploy/helm/test.sh (which fetches Helm). Exits non-zero on the first failed check,
naming the flavor, tenant and what was wrong.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import tomllib

import yaml

FLAVORS = ("jira", "servicenow", "github")
HEALTH_PORT = 8080
PROBE_DELAY_S = 30
SKIP = ["collaboration_integrations_{flavor}:3:1042", "0:7"]
# What every render holds; autoscaling adds to it (expected_kinds). An object named other than
# the release's full name is keyed "<kind>:<name without the full name's prefix>".
BASE_KINDS = {"Deployment", "ConfigMap", "NetworkPolicy", "ServiceAccount"}
KAFKA_SECRET = "case-third-party-reader-kafka"
# The autoscaling values the checks render with (maxReplicas below the partition count).
AUTOSCALING = {"partitions": 6, "minReplicas": 1, "maxReplicas": 4, "lagThreshold": 1000}
LAG_METRIC = "dd_case_kafka_consumer_lag"


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def helm(args, helm_bin, expect_ok=True):
    proc = subprocess.run([helm_bin, *args], capture_output=True, text=True)
    if expect_ok and proc.returncode != 0:
        raise Failed(f"helm {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def value_files(chart, flavor, tenant):
    return [
        "-f", os.path.join(chart, "values", "flavors", f"{flavor}.yaml"),
        "-f", os.path.join(chart, "values", "tenants", tenant, "values.yaml"),
    ]


def render(helm_bin, chart, flavor, tenant, extra=(), expect=BASE_KINDS):
    out = helm(["template", f"ctpr-{flavor}", chart, *value_files(chart, flavor, tenant), *extra],
               helm_bin).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    fullname = f"case-third-party-reader-{flavor}"
    by_kind = {}
    for doc in docs:
        name = doc["metadata"]["name"]
        key = doc["kind"]
        if name != fullname:
            check(name.startswith(fullname + "-"), f"{key} {name} not named after the release")
            key = f"{key}:{name[len(fullname) + 1:]}"
        check(key not in by_kind, f"two {key} objects")
        by_kind[key] = doc
    check(set(by_kind) == set(expect),
          f"rendered kinds: {sorted(by_kind)}, expected {sorted(expect)}")
    return by_kind


def expected_kinds(mode, auth=False, username=False):
    """What a render with autoscaling in `mode` (None: off) holds."""
    kinds = set(BASE_KINDS)
    if mode == "keda":
        kinds.add("ScaledObject")
        if auth:
            kinds.add("TriggerAuthentication")
        if username:
            kinds.add("ConfigMap:kafka-scaler")
    elif mode == "hpa":
        kinds.add("HorizontalPodAutoscaler")
    return kinds


def values_file(values):
    """A temporary values file holding `values` (a context manager)."""
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml")
    f.write(yaml.safe_dump(values))
    f.flush()
    return f


def autoscaling_values(mode, **overrides):
    return {"autoscaling": {"enabled": True, "mode": mode, **AUTOSCALING, **overrides}}


def check_probe(probe, path, name):
    check(probe["httpGet"]["path"] == path, f"{name} path {probe['httpGet']['path']}")
    check(probe["httpGet"]["port"] == HEALTH_PORT, f"{name} port {probe['httpGet']['port']}")
    check(probe["initialDelaySeconds"] == PROBE_DELAY_S,
          f"{name} initialDelaySeconds {probe['initialDelaySeconds']}")


def check_objects(objs, flavor, tenant, skip, reader_bin_dir, autoscaled=False):
    dep, cm = objs["Deployment"], objs["ConfigMap"]
    netpol, sa = objs["NetworkPolicy"], objs["ServiceAccount"]
    spec = dep["spec"]
    pod = spec["template"]["spec"]

    # One replica (none set when autoscaled: KEDA's or the HPA's count would be reset by every
    # upgrade), zero-downtime rolling update.
    if autoscaled:
        check("replicas" not in spec, f"replicas {spec.get('replicas')} on an autoscaled Deployment")
    else:
        check(spec["replicas"] == 1, f"replicas {spec.get('replicas')}")
    check(spec["strategy"]["type"] == "RollingUpdate", "strategy type")
    check(spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1},
          f"rollingUpdate {spec['strategy']['rollingUpdate']}")

    # Probes and the health port.
    (container,) = pod["containers"]
    check_probe(container["livenessProbe"], "/live", "liveness")
    check_probe(container["readinessProbe"], "/ready", "readiness")
    check([p["containerPort"] for p in container["ports"]] == [HEALTH_PORT], "container ports")

    # The config: mounted from the ConfigMap, TOML the reader accepts, with the flavor's settings
    # and the skip list.
    toml_text = cm["data"]["config.toml"]
    config = tomllib.loads(toml_text)
    check(config["kafka"]["topic"] == f"collaboration_integrations_{flavor}",
          f"topic {config['kafka'].get('topic')}")
    check(config["kafka"]["group_id"] == "case-management", "group_id")
    integration = {"jira": "own_account_ids", "servicenow": "own_user_names",
                   "github": "own_accounts"}[flavor]
    check(set(config["integration"]) == {integration}, f"[integration] {config['integration']}")
    check(config["skip"]["messages"] == skip, f"skip list {config['skip']}")
    check(config["health"]["listen"] == f"0.0.0.0:{HEALTH_PORT}", "health listen")
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    check(mounts["config"]["mountPath"] == "/etc/case-third-party-reader"
          and "subPath" not in mounts["config"], "config mount (whole directory, no subPath)")
    volumes = {v["name"]: v for v in pod["volumes"]}
    check(volumes["config"]["configMap"]["name"] == cm["metadata"]["name"], "config volume")

    # SIGTERM drains within drain_timeout_ms; the grace period must outlast it.
    drain_ms = config["kafka"].get("drain_timeout_ms", 10_000)
    grace = pod["terminationGracePeriodSeconds"]
    check(grace * 1000 > drain_ms, f"terminationGracePeriodSeconds {grace} <= drain {drain_ms} ms")

    # Non-root, least privilege, bounded resources.
    psc, csc = pod["securityContext"], container["securityContext"]
    check(psc["runAsNonRoot"] is True and psc["runAsUser"] != 0, "pod securityContext")
    check(csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
          and csc["capabilities"]["drop"] == ["ALL"], "container securityContext")
    check(container["resources"]["requests"] and container["resources"]["limits"], "resources")
    check(pod["serviceAccountName"] == sa["metadata"]["name"], "service account")
    check(sa["automountServiceAccountToken"] is False, "service account token automount")

    # The image: the flavor's own, FIPS for gov.
    image = container["image"]
    name = image.rsplit("/", 1)[-1].split(":")[0]
    if tenant == "gov":
        check(name == f"casethirdpartyreaderfips-{flavor}", f"gov image {image}")
    else:
        check(name == f"casethirdpartyreader-{flavor}", f"image {image}")

    # No ingress but the health port, on the reader's pods.
    np_spec = netpol["spec"]
    check("Ingress" in np_spec["policyTypes"], "NetworkPolicy policyTypes")
    check(np_spec["podSelector"]["matchLabels"].items()
          <= spec["template"]["metadata"]["labels"].items(), "NetworkPolicy selects the pods")
    check(len(np_spec["ingress"]) >= 1, "NetworkPolicy ingress rule for the health port")
    for rule in np_spec["ingress"]:
        check(rule.get("ports") == [{"protocol": "TCP", "port": HEALTH_PORT}],
              f"NetworkPolicy ingress rule {rule}")

    # Kafka security: prod and gov on SASL_SSL (SCRAM-SHA-512 and the brokers' CA), every file
    # from the read-only Secret mount, nothing secret in the environment.
    security = config["kafka"].get("security", {})
    if tenant in ("prod", "gov"):
        check(security.get("protocol") == "sasl_ssl", f"{tenant} kafka protocol {security}")
        check(security.get("mechanism") == "scram-sha-512", f"{tenant} mechanism {security}")
        check(security.get("endpoint_identification", True) is True, "endpoint identification")
        kafka_mount = mounts.get("kafka-credentials")
        check(kafka_mount is not None and kafka_mount.get("readOnly") is True,
              f"kafka credentials mount {kafka_mount}")
        secret = volumes["kafka-credentials"].get("secret", {})
        check(secret.get("secretName") == "case-third-party-reader-kafka",
              f"kafka credentials volume {volumes['kafka-credentials']}")
        for field in ("ca_file", "password_file"):
            path = security.get(field, "")
            check(path.startswith(kafka_mount["mountPath"] + "/"),
                  f"kafka.security.{field} {path!r} not in the Secret mount")
    else:
        check(security.get("protocol", "plaintext") == "plaintext", f"{tenant} kafka {security}")
    for env in container.get("env", []):
        check(not env["name"].startswith("CTPR_KAFKA__SECURITY__"), f"env {env['name']}")
        check(not any(w in env["name"].upper() for w in ("PASSWORD", "TOKEN", "SECRET")),
              f"a secret-looking environment variable {env['name']}")

    # The flavor binary itself accepts the rendered config; the files it names (mounted from
    # Secrets in a pod) are stand-ins under a temporary root, since validate-config reads them.
    if reader_bin_dir:
        with tempfile.TemporaryDirectory() as root:
            for path in {p for p in re.findall(r'"(/var/run/secrets/[^"]+)"', toml_text)}:
                os.makedirs(os.path.dirname(root + path), exist_ok=True)
                with open(root + path, "w") as stand_in:
                    stand_in.write("stand-in\n")
            local_toml = toml_text.replace('"/var/run/secrets/', f'"{root}/var/run/secrets/')
            with open(os.path.join(root, "config.toml"), "w") as f:
                f.write(local_toml)
            binary = os.path.join(reader_bin_dir, f"{flavor}-reader")
            # The file alone: CTPR_* variables would override it.
            env = {k: v for k, v in os.environ.items() if not k.startswith("CTPR_")}
            proc = subprocess.run([binary, "validate-config", f.name], capture_output=True,
                                  text=True, env=env)
            check(proc.returncode == 0 and proc.stdout.strip() == "ok",
                  f"{flavor}-reader validate-config: {proc.stdout}{proc.stderr}")
            # Without the mounted files, the same config is refused, naming the field.
            if security.get("password_file"):
                os.remove(root + security["password_file"])
                proc = subprocess.run([binary, "validate-config", f.name], capture_output=True,
                                      text=True, env=env)
                check(proc.returncode != 0 and "kafka.security.password_file" in proc.stdout,
                      f"validate-config without the password file: {proc.stdout}")
    return dep


def check_scale_target(ref, dep, what):
    check(ref == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]},
          f"{what} scaleTargetRef {ref}")


def check_behavior(behavior, what):
    # Scale-down waits out 5 minutes of lower lag, then removes one replica at a time.
    down = (behavior or {}).get("scaleDown")
    check(down, f"{what} has no scale-down behavior")
    check(down.get("stabilizationWindowSeconds", 0) >= 300, f"{what} scale-down window {down}")
    check(down.get("policies") and all(p["type"] == "Pods" and p["value"] == 1
                                   for p in down["policies"]), f"{what} scale-down policies {down}")


def check_autoscaling(objs, flavor, tenant, mode, max_replicas=AUTOSCALING["maxReplicas"],
                      min_replicas=AUTOSCALING["minReplicas"]):
    """The ScaledObject (and TriggerAuthentication) or HPA against the reader's own config."""
    dep = objs["Deployment"]
    kafka = tomllib.loads(objs["ConfigMap"]["data"]["config.toml"])["kafka"]
    topic, lag = kafka["topic"], AUTOSCALING["lagThreshold"]
    partitions = AUTOSCALING["partitions"]
    check(topic == f"collaboration_integrations_{flavor}", f"topic {topic}")
    if mode == "keda":
        so = objs["ScaledObject"]
        spec = so["spec"]
        check(so["apiVersion"] == "keda.sh/v1alpha1", f"ScaledObject apiVersion {so['apiVersion']}")
        check_scale_target(spec["scaleTargetRef"], dep, "ScaledObject")
        check(spec["minReplicaCount"] == min_replicas, f"minReplicaCount {spec['minReplicaCount']}")
        check(spec["maxReplicaCount"] == max_replicas <= partitions,
              f"maxReplicaCount {spec['maxReplicaCount']} (partitions {partitions})")
        check_behavior(spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
                       .get("behavior"), "ScaledObject")
        (trigger,) = spec["triggers"]
        check(trigger["type"] == "kafka", f"trigger type {trigger['type']}")
        md = trigger["metadata"]
        check(all(isinstance(v, str) for v in md.values()), f"non-string trigger metadata {md}")
        expected = {
            "bootstrapServers": kafka["brokers"],
            "consumerGroup": kafka["group_id"],
            "topic": topic,
            "lagThreshold": str(lag),
            "activationLagThreshold": "0",
            "offsetResetPolicy": kafka["auto_offset_reset"],
            "allowIdleConsumers": "false",
            "limitToPartitionsWithLag": "true",
        }
        security = kafka.get("security", {})
        if tenant in ("prod", "gov"):
            expected |= {"sasl": "scram_sha512", "tls": "enable"}
        check(md == expected, f"kafka trigger metadata {md}, expected {expected}")
        if tenant in ("prod", "gov"):
            # Credentials: the Secret the reader mounts, key by key the files its config names;
            # the username from the chart's ConfigMap.
            ta = objs["TriggerAuthentication"]
            check(ta["apiVersion"] == "keda.sh/v1alpha1", f"TriggerAuthentication {ta['apiVersion']}")
            check(trigger.get("authenticationRef") == {"name": ta["metadata"]["name"]},
                  f"authenticationRef {trigger.get('authenticationRef')}")
            pod = dep["spec"]["template"]["spec"]
            (mount,) = [m for m in pod["containers"][0]["volumeMounts"]
                        if m["name"] == "kafka-credentials"]
            (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-credentials"]
            refs = {r["parameter"]: r for r in ta["spec"]["secretTargetRef"]}
            check(set(refs) == {"ca", "password"}, f"secretTargetRef {sorted(refs)}")
            for param, field in (("ca", "ca_file"), ("password", "password_file")):
                ref = refs[param]
                check(ref["name"] == volume["secret"]["secretName"] == KAFKA_SECRET,
                      f"secretTargetRef {param} Secret {ref['name']}")
                check(f"{mount['mountPath']}/{ref['key']}" == security[field],
                      f"secretTargetRef {param} key {ref['key']} is not {security[field]}")
            cm = objs["ConfigMap:kafka-scaler"]
            check(ta["spec"]["configMapTargetRef"] == [
                {"parameter": "username", "name": cm["metadata"]["name"], "key": "username"}],
                f"configMapTargetRef {ta['spec'].get('configMapTargetRef')}")
            check(cm["data"] == {"username": security["username"]}, f"username {cm['data']}")
        else:
            check("authenticationRef" not in trigger, "authenticationRef without Kafka security")
    else:
        hpa = objs["HorizontalPodAutoscaler"]
        spec = hpa["spec"]
        check(hpa["apiVersion"] == "autoscaling/v2", f"HPA apiVersion {hpa['apiVersion']}")
        check_scale_target(spec["scaleTargetRef"], dep, "HPA")
        check(spec["minReplicas"] == min_replicas, f"minReplicas {spec['minReplicas']}")
        check(spec["maxReplicas"] == max_replicas <= partitions,
              f"maxReplicas {spec['maxReplicas']} (partitions {partitions})")
        check(spec["metrics"] == [{"type": "External", "external": {
            "metric": {"name": LAG_METRIC,
                       "selector": {"matchLabels": {"flavor": flavor, "topic": topic}}},
            "target": {"type": "AverageValue", "averageValue": str(lag)}}}],
            f"HPA metrics {spec['metrics']}")
        check_behavior(spec.get("behavior"), "HPA")


def check_autoscaling_variants(helm_bin, chart):
    """What the per-tenant renders do not cover: defaults, mutual TLS, a DatadogMetric."""
    jira_staging, jira_prod = ("jira", "staging"), ("jira", "prod")
    # maxReplicas unset: the partition count; KEDA may scale to zero.
    for mode in ("keda", "hpa"):
        values = autoscaling_values(mode, maxReplicas=None)
        with values_file(values) as f:
            objs = render(helm_bin, chart, *jira_prod, ["-f", f.name],
                          expected_kinds(mode, auth=True, username=True))
        check_autoscaling(objs, "jira", "prod", mode, max_replicas=AUTOSCALING["partitions"])
    with values_file(autoscaling_values("keda", minReplicas=0)) as f:
        objs = render(helm_bin, chart, *jira_staging, ["-f", f.name], expected_kinds("keda"))
    check_autoscaling(objs, "jira", "staging", "keda", min_replicas=0)

    # Mutual TLS without SASL: tls enabled, CA, client certificate, key and its passphrase from
    # the reader's Secret, no username.
    mount = "/var/run/secrets/kafka"
    values = autoscaling_values("keda")
    values["kafkaSecurity"] = {"secretName": "kafka-mtls"}
    values["config"] = {"kafka": {"security": {
        "protocol": "ssl", "ca_file": f"{mount}/ca.pem", "certificate_file": f"{mount}/tls.crt",
        "key_file": f"{mount}/tls.key", "key_password_file": f"{mount}/tls.key.pass"}}}
    with values_file(values) as f:
        objs = render(helm_bin, chart, *jira_staging, ["-f", f.name],
                      expected_kinds("keda", auth=True))
    (trigger,) = objs["ScaledObject"]["spec"]["triggers"]
    check(trigger["metadata"].get("tls") == "enable" and "sasl" not in trigger["metadata"],
          f"mutual TLS trigger metadata {trigger['metadata']}")
    refs = objs["TriggerAuthentication"]["spec"]["secretTargetRef"]
    check(sorted((r["parameter"], r["name"], r["key"]) for r in refs) == [
        ("ca", "kafka-mtls", "ca.pem"), ("cert", "kafka-mtls", "tls.crt"),
        ("key", "kafka-mtls", "tls.key"), ("keyPassword", "kafka-mtls", "tls.key.pass")],
        f"mutual TLS secretTargetRef {refs}")
    check("configMapTargetRef" not in objs["TriggerAuthentication"]["spec"],
          "a username without SASL")

    # The Datadog Cluster Agent's DatadogMetric: its own name, no selector.
    dd_metric = "datadogmetric@case-management:ctpr-jira-lag"
    values = autoscaling_values("hpa", hpa={"metricName": dd_metric, "matchFlavorAndTopic": False})
    with values_file(values) as f:
        objs = render(helm_bin, chart, *jira_prod, ["-f", f.name], expected_kinds("hpa"))
    (metric,) = objs["HorizontalPodAutoscaler"]["spec"]["metrics"]
    check(metric["external"]["metric"] == {"name": dd_metric},
          f"DatadogMetric HPA metric {metric['external']['metric']}")


def must_fail(helm_bin, chart, args, expect, what):
    proc = helm(["template", "ctpr", chart, *args], helm_bin, expect_ok=False)
    check(proc.returncode != 0 and expect in proc.stderr,
          f"{what}: expected a failure mentioning {expect!r}, got rc={proc.returncode}"
          f" {proc.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--helm", required=True)
    ap.add_argument("--chart", required=True)
    ap.add_argument("--reader-bin-dir")
    ap.add_argument("--write-configs", help="also write each rendered config.toml here, as "
                    "<flavor>-<tenant>.toml (for the runtime image test)")
    args = ap.parse_args()
    chart = args.chart
    tenants = sorted(os.listdir(os.path.join(chart, "values", "tenants")))
    for required in ("staging", "prod", "gov"):
        check(required in tenants, f"tenant {required} missing")

    for flavor in FLAVORS:
        for tenant in tenants:
            where = f"{flavor} x {tenant}"
            try:
                helm(["lint", "--strict", chart, *value_files(chart, flavor, tenant)], args.helm)
                objs = render(args.helm, chart, flavor, tenant)
                dep = check_objects(objs, flavor, tenant, [], args.reader_bin_dir)
                if args.write_configs:
                    os.makedirs(args.write_configs, exist_ok=True)
                    out = os.path.join(args.write_configs, f"{flavor}-{tenant}.toml")
                    with open(out, "w") as f:
                        f.write(objs["ConfigMap"]["data"]["config.toml"])
                # An operator skip list from values lands in the TOML, and does not roll the
                # pods (the reader reloads it from the mounted file).
                skip = [s.format(flavor=flavor) for s in SKIP]
                values = yaml.safe_dump({"config": {"skip": {"messages": skip}}})
                with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                    f.write(values)
                    f.flush()
                    dep2 = check_objects(render(args.helm, chart, flavor, tenant, ["-f", f.name]),
                                         flavor, tenant, skip, args.reader_bin_dir)
                ann = lambda d: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                check(ann(dep) == ann(dep2), "the skip list changed the pod template checksum")
                # Autoscaling, off above (no ScaledObject, no HPA, one replica): a KEDA
                # ScaledObject (with its TriggerAuthentication where Kafka is secured) or an
                # HPA, and no replica count on the Deployment.
                secured = tenant in ("prod", "gov")
                for mode in ("keda", "hpa"):
                    with values_file(autoscaling_values(mode)) as f:
                        helm(["lint", "--strict", chart, *value_files(chart, flavor, tenant),
                              "-f", f.name], args.helm)
                        objs = render(args.helm, chart, flavor, tenant, ["-f", f.name],
                                      expected_kinds(mode, auth=secured, username=secured))
                    dep3 = check_objects(objs, flavor, tenant, [], args.reader_bin_dir,
                                         autoscaled=True)
                    check_autoscaling(objs, flavor, tenant, mode)
                    check(ann(dep) == ann(dep3), f"autoscaling ({mode}) changed the pod template")
            except Failed as e:
                print(f"FAIL {where}: {e}", file=sys.stderr)
                return 1
            print(f"ok   {where}: lint, template, checks (autoscaling off, keda, hpa)")

    try:
        check_autoscaling_variants(args.helm, chart)
    except Failed as e:
        print(f"FAIL autoscaling variants: {e}", file=sys.stderr)
        return 1
    print("ok   autoscaling variants: maxReplicas defaults to the partitions, KEDA to zero, "
          "mutual TLS, a DatadogMetric")

    # What the chart refuses.
    try:
        must_fail(args.helm, chart, [], "flavor must be set", "no flavor")
        jira_gov = value_files(chart, "jira", "gov")
        must_fail(args.helm, chart, [*jira_gov, "--set", "image.name=casethirdpartyreader"],
                  "FIPS image", "gov on the standard image")
        jira_prod = value_files(chart, "jira", "prod")
        must_fail(args.helm, chart, [*jira_prod, "--set", "terminationGracePeriodSeconds=12"],
                  "terminationGracePeriodSeconds", "grace period shorter than the drain")
        must_fail(args.helm, chart, [*jira_prod, "--set", "kafkaSecurity.secretName="],
                  "needs kafkaSecurity.secretName", "a SASL password without its Secret")
        must_fail(args.helm, chart, [*jira_prod, "--set",
                                     "config.kafka.security.password_file=/etc/kafka-password"],
                  "must be under kafkaSecurity.mountPath", "a password file outside the mount")
        must_fail(args.helm, chart, [*jira_prod, "--set", "extraEnv[0].name=CTPR_KAFKA__SECURITY__PROTOCOL",
                                     "--set", "extraEnv[0].value=plaintext"],
                  "not the environment", "kafka security from the environment")
        # Autoscaling: never more replicas than partitions, and what KEDA cannot read.
        on = ["--set", "autoscaling.enabled=true"]
        six = [*on, "--set", "autoscaling.partitions=6"]
        for mode in ("keda", "hpa"):
            must_fail(args.helm, chart, [*jira_prod, *six, "--set", f"autoscaling.mode={mode}",
                                         "--set", "autoscaling.maxReplicas=7"],
                      "autoscaling.maxReplicas (7) exceeds autoscaling.partitions (6)",
                      f"maxReplicas above the partitions ({mode})")
        must_fail(args.helm, chart, [*jira_prod, *on], "autoscaling.partitions must be set",
                  "autoscaling without the partition count")
        must_fail(args.helm, chart, [*jira_prod, *six, "--set", "autoscaling.mode=vpa"],
                  "autoscaling.mode must be keda or hpa", "an unknown autoscaling mode")
        must_fail(args.helm, chart, [*jira_prod, *six, "--set", "autoscaling.minReplicas=5",
                                     "--set", "autoscaling.maxReplicas=4"],
                  "autoscaling.minReplicas (5) exceeds autoscaling.maxReplicas (4)",
                  "minReplicas above maxReplicas")
        must_fail(args.helm, chart, [*jira_prod, *six, "--set", "autoscaling.mode=hpa",
                                     "--set", "autoscaling.minReplicas=0"],
                  "at least 1 with mode hpa", "an HPA scaling to zero")
        must_fail(args.helm, chart, [*jira_prod, *six, "--set", "autoscaling.lagThreshold=0"],
                  "autoscaling.lagThreshold must be at least 1", "a zero lag threshold")
        must_fail(args.helm, chart, [*jira_prod, *six, "--set", "extraEnv[0].name=CTPR_KAFKA__TOPIC",
                                     "--set", "extraEnv[0].value=other"],
                  "with autoscaling, set config.kafka in values", "the topic from the environment")
        must_fail(args.helm, chart, [*jira_prod, *six, "--set",
                                     "config.kafka.security.mechanism=oauthbearer",
                                     "--set", "config.kafka.security.password_file=null",
                                     "--set", "config.kafka.security.token_file=/var/run/secrets/kafka/token"],
                  "cannot use SASL mechanism \"oauthbearer\"", "KEDA with OAUTHBEARER")
        must_fail(args.helm, chart, [*jira_prod, *six, "--set",
                                     "config.kafka.security.ca_file=/etc/ssl/kafka-ca.pem"],
                  "must be a key of the kafkaSecurity Secret", "KEDA with a CA outside the Secret")
    except Failed as e:
        print(f"FAIL refusals: {e}", file=sys.stderr)
        return 1
    print("ok   refusals: no flavor, gov without the FIPS image, grace period below the drain, "
          "kafka secrets outside a mounted Secret or from the environment; autoscaling above "
          "the partitions or without them, unknown mode, min above max, HPA to zero, zero lag "
          "threshold, Kafka settings from the environment, KEDA with OAUTHBEARER or a CA outside "
          "the Secret")
    return 0


if __name__ == "__main__":
    sys.exit(main())
