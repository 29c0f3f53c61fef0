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


def render(helm_bin, chart, flavor, tenant, extra=()):
    out = helm(["template", f"ctpr-{flavor}", chart, *value_files(chart, flavor, tenant), *extra],
               helm_bin).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    by_kind = {}
    for doc in docs:
        check(doc["kind"] not in by_kind, f"two {doc['kind']} objects")
        by_kind[doc["kind"]] = doc
    check(set(by_kind) == {"Deployment", "ConfigMap", "NetworkPolicy", "ServiceAccount"},
          f"rendered kinds: {sorted(by_kind)}")
    return by_kind


def check_probe(probe, path, name):
    check(probe["httpGet"]["path"] == path, f"{name} path {probe['httpGet']['path']}")
    check(probe["httpGet"]["port"] == HEALTH_PORT, f"{name} port {probe['httpGet']['port']}")
    check(probe["initialDelaySeconds"] == PROBE_DELAY_S,
          f"{name} initialDelaySeconds {probe['initialDelaySeconds']}")


def check_objects(objs, flavor, tenant, skip, reader_bin_dir):
    dep, cm = objs["Deployment"], objs["ConfigMap"]
    netpol, sa = objs["NetworkPolicy"], objs["ServiceAccount"]
    spec = dep["spec"]
    pod = spec["template"]["spec"]

    # One replica, zero-downtime rolling update.
    check(spec["replicas"] == 1, f"replicas {spec['replicas']}")
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
            except Failed as e:
                print(f"FAIL {where}: {e}", file=sys.stderr)
                return 1
            print(f"ok   {where}: lint, template, checks")

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
    except Failed as e:
        print(f"FAIL refusals: {e}", file=sys.stderr)
        return 1
    print("ok   refusals: no flavor, gov without the FIPS image, grace period below the drain, "
          "kafka secrets outside a mounted Secret or from the environment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
