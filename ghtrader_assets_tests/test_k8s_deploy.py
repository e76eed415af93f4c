"""The Kubernetes deployment (infra/k8s), checked without a cluster.

`kubectl kustomize` renders the QuestDB/Postgres/config manifests of each overlay offline;
the Dagster Helm values are checked against the chart's values.schema.json (kept in
infra/k8s/schema) and the Dagster instance config they produce is loaded by Dagster's own
validation. What only a cluster can show (pods start, the chart's templates accept these
values at the pinned version, QuestDB and Postgres reachable) is listed in the README,
"Scaling out".
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "infra" / "k8s"
VALUES = K8S / "dagster" / "values.yaml"
ACCOUNTS_VALUES = K8S / "dagster" / "values-accounts.yaml"
ACCOUNTS_COMPONENT = K8S / "components" / "tq-accounts"
SCHEMA = K8S / "schema" / "dagster-values.schema.json"
CONCURRENCY_SCHEMA = K8S / "schema" / "dagster-values-concurrency.schema.json"
DOCKERFILE = ROOT / "infra" / "Dockerfile"
LOCAL_INSTANCE = ROOT / "infra" / "dagster" / "dagster.yaml"
OVERLAYS = ("ingest", "live")
CREDENTIALS_SECRET = "ghtrader-credentials"
#: Variables the code reads only through Dagster EnvVar; they must come from a Secret.
SECRET_VARS = ("GHTRADER_QDB_PASSWORD", "GHTRADER_TQ_USER", "GHTRADER_TQ_PASSWORD")
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|TQ_USER", re.IGNORECASE)

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl is not installed: `kubectl kustomize` renders infra/k8s offline "
    "(install the kubectl package to run these checks)",
)


# --- helpers -----------------------------------------------------------------------------


def render(overlay: str) -> list[dict[str, Any]]:
    """The manifests of ``infra/k8s/overlays/<overlay>`` as `kubectl kustomize` renders them."""
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def find(docs: list[dict], kind: str, name: str) -> dict:
    """The one ``kind`` named ``name`` (or ``name`` plus kustomize's hash suffix)."""
    pattern = re.compile(rf"{re.escape(name)}(-[a-z0-9]{{10}})?")
    matches = [d for d in docs if d["kind"] == kind and pattern.fullmatch(d["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)}"
    return matches[0]


def pod_containers(doc: dict) -> Iterator[dict]:
    """Containers and init containers of a workload's pod template."""
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    if doc["kind"] == "CronJob":
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    yield from pod.get("containers", [])
    yield from pod.get("initContainers", [])


def image_problem(image: str) -> str | None:
    """Why ``image`` is not pinned (no tag, or ``latest``), else None."""
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return f"{image}: no tag (pulls latest)"
    if name.rsplit(":", 1)[1] == "latest":
        return f"{image}: tag latest"
    return None


def resources_problem(owner: str, resources: dict | None) -> str | None:
    """Why ``resources`` would let a pod run unbounded or unscheduled, else None."""
    resources = resources or {}
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    missing = [f"requests.{k}" for k in ("cpu", "memory") if k not in requests]
    missing += ["limits.memory"] if "memory" not in limits else []
    return f"{owner}: resources miss {', '.join(missing)}" if missing else None


def inlined_secrets(docs: list[dict]) -> list[str]:
    """Places where a credential is written into the manifests instead of referenced."""
    problems = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Secret":
            problems.append(f"{name}: a Secret with its values is part of the manifests")
        if doc["kind"] == "ConfigMap":
            problems += [
                f"{name}: key {key} looks like a credential"
                for key in doc.get("data", {})
                if SECRET_NAME.search(key)
            ]
        for container in pod_containers(doc):
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]) and "value" in env:
                    problems.append(f"{name}: env {env['name']} has a literal value")
    return problems


def load_values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def helm_merge(base: Any, override: Any) -> Any:
    """``-f base -f override`` as Helm merges values files: maps deeply, anything else
    (lists included) replaced whole."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = helm_merge(base[key], value) if key in base else value
        return merged
    return copy.deepcopy(override)


def accounts_values() -> dict[str, Any]:
    """values.yaml with values-accounts.yaml layered on top, as the README installs them."""
    return helm_merge(load_values(), yaml.safe_load(ACCOUNTS_VALUES.read_text()))


def env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (what kustomize's configMapGenerator reads)."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def component_accounts() -> tuple[str, ...]:
    """The account names of the tq-accounts component, parsed as the code location does."""
    from ghtrader_assets.config import Settings

    settings_env = env_file(K8S / "base" / "ghtrader.env") | env_file(
        ACCOUNTS_COMPONENT / "tq-accounts.env"
    )
    accounts = settings_env["GHTRADER_TQ_ACCOUNTS"].split(";")
    names = tuple(entry.split(":", 1)[0] for entry in accounts if entry)
    credentials = {
        f"GHTRADER_TQ_{kind}_{name.upper()}": "set-by-the-secret"
        for name in names
        for kind in ("USER", "PASSWORD")
    }
    settings = Settings.from_env(settings_env | credentials)  # checked as at load
    assert settings.tq_accounts is not None
    return settings.tq_accounts.names


def account_secret_problems(values: dict[str, Any], accounts: tuple[str, ...]) -> list[str]:
    """Why the code server or the run pods would miss an account's Secret (or get one
    that no account uses), else nothing."""
    wanted = [CREDENTIALS_SECRET] + [f"ghtrader-tq-account-{a}" for a in accounts]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    problems = []
    for owner, env_secrets in (
        ("code server", deployment["envSecrets"]),
        ("run pods", launcher["envSecrets"]),
    ):
        names = [e["name"] for e in env_secrets]
        if sorted(names) != sorted(wanted):
            problems.append(f"{owner}: envSecrets {names}, expected {wanted}")
    return problems


def chart_version() -> str:
    kustomization = yaml.safe_load((K8S / "dagster" / "kustomization.yaml").read_text())
    (chart,) = [c for c in kustomization["helmCharts"] if c["name"] == "dagster"]
    assert chart["valuesFile"] == "values.yaml"
    return str(chart["version"])


def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"infra/Dockerfile has no ARG {name}=..."
    return match.group(1)


def offline_schema(schema: Any) -> Any:
    """``schema`` without its ``required`` lists and its remote ``$ref``s.

    Helm validates the chart's defaults merged with ours; this file overrides only what it
    changes, so keys it leaves out are the chart's business. Every key it does set must
    still exist in the chart (``additionalProperties: false``) with the right type and enum.
    The remote refs point at Kubernetes object schemas (kubernetesjsonschema.dev), which are
    not fetched here: the ``type`` next to each still applies, and the Kubernetes objects in
    the values (resources, security contexts) are checked by the tests below and by the API
    server at install time.
    """
    if isinstance(schema, dict):
        return {
            k: offline_schema(v)
            for k, v in schema.items()
            if k != "required" and not (k == "$ref" and not str(v).startswith("#"))
        }
    if isinstance(schema, list):
        return [offline_schema(v) for v in schema]
    return schema


def schema_errors(values: dict[str, Any]) -> list[str]:
    """Violations of the chart's values schema by ``values``."""
    from jsonschema import Draft7Validator

    schema = json.loads(SCHEMA.read_text())
    # The chart's `concurrency` values are newer than the fetched schema (schema/README.md).
    schema["definitions"].update(json.loads(CONCURRENCY_SCHEMA.read_text())["definitions"])
    schema["properties"]["concurrency"] = {"$ref": "#/definitions/Concurrency"}
    validator = Draft7Validator(offline_schema(schema))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(values)
    ]


def chart_instance_config(values: dict[str, Any]) -> dict[str, Any]:
    """The dagster.yaml the chart's configmap-instance template renders from ``values``
    (the parts these values set), to be loaded by Dagster's own config validation."""
    daemon = values["dagsterDaemon"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    pg = values["postgresql"]
    postgres = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
        }
    }
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"] or {}
    renamed = {"maxConcurrentRuns": "max_concurrent_runs"}
    renamed |= {"tagConcurrencyLimits": "tag_concurrency_limits"}
    coordinator_config = {renamed[k]: v for k, v in queued.items() if k in renamed and v}
    # templates/helpers/instance/_concurrency.tpl: camelCase values -> dagster.yaml keys.
    concurrency = values.get("concurrency") or {}
    snake = {
        "defaultLimit": "default_limit",
        "granularity": "granularity",
        "opGranularityRunBuffer": "op_granularity_run_buffer",
        "maxConcurrentRuns": "max_concurrent_runs",
        "tagConcurrencyLimits": "tag_concurrency_limits",
    }
    rendered_concurrency = {
        section: {snake[k]: v for k, v in (concurrency.get(section) or {}).items() if v is not None}
        for section in ("pools", "runs")
        if concurrency.get("enabled") and concurrency.get(section)
    }
    monitoring = daemon["runMonitoring"]
    retention = values["retention"]
    config: dict[str, Any] = {
        "run_launcher": {
            "module": "dagster_k8s",
            "class": values["runLauncher"]["type"],
            "config": {
                "load_incluster_config": launcher["loadInclusterConfig"],
                "instance_config_map": "dagster-instance",
                "postgres_password_secret": values["global"]["postgresqlSecretName"],
                "env_config_maps": [c["name"] for c in launcher["envConfigMaps"]],
                "env_secrets": [s["name"] for s in launcher["envSecrets"]],
                "resources": launcher["resources"],
            },
        },
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": postgres,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": postgres,
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": postgres,
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": daemon["runCoordinator"]["type"],
            **({"config": coordinator_config} if coordinator_config else {}),
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
        "retention": {
            key: {"purge_after_days": retention[name]["purgeAfterDays"]}
            for key, name in (
                ("schedule", "schedule"),
                ("sensor", "sensor"),
                ("auto_materialize", "autoMaterialize"),
            )
        },
    }
    if rendered_concurrency:
        config["concurrency"] = rendered_concurrency
    if daemon["runRetries"].get("enabled"):
        config["run_retries"] = {"enabled": True, "max_retries": daemon["runRetries"]["maxRetries"]}
    extra = values.get("additionalInstanceConfig") or {}
    clash = sorted(set(config) & set(extra))
    assert not clash, f"additionalInstanceConfig repeats keys the chart renders: {clash}"
    return config | extra


# --- rendered manifests (kubectl kustomize) ------------------------------------------------


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_questdb_is_a_statefulset_on_a_persistent_volume(overlay):
    docs = render(overlay)
    sts = find(docs, "StatefulSet", "ghtrader-questdb")
    assert sts["spec"]["replicas"] == 1  # QuestDB open source does not replicate
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/questdb"
    service = find(docs, "Service", "ghtrader-questdb")
    assert {p["port"] for p in service["spec"]["ports"]} == {9000, 8812}
    config = find(docs, "ConfigMap", "ghtrader-config")["data"]
    assert config["GHTRADER_QDB_HOST"] == service["metadata"]["name"]
    assert config["GHTRADER_STORE"] == "questdb"
    assert all(
        d["metadata"].get("namespace") == "ghtrader" for d in docs if d["kind"] != "Namespace"
    )


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_selects_the_questdb_o3_mode_of_infra_questdb(overlay):
    docs = render(overlay)
    sts = find(docs, "StatefulSet", "ghtrader-questdb")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    mode_maps = [e["configMapRef"]["name"] for e in container["envFrom"]]
    (mode_map,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] in mode_maps
    ]
    expected = dict(
        line.split("=", 1)
        for line in (ROOT / "infra" / "questdb" / "modes" / f"{overlay}.env")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    )
    assert mode_map["data"] == expected


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_images_are_pinned_and_every_container_has_resources(overlay):
    docs = render(overlay)
    workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment", "Job", "CronJob")]
    assert {d["metadata"]["name"] for d in workloads} == {"ghtrader-questdb", "ghtrader-postgres"}
    problems = []
    for doc in workloads:
        for c in pod_containers(doc):
            problems.append(image_problem(c["image"]))
            problems.append(
                resources_problem(f"{doc['metadata']['name']}/{c['name']}", c.get("resources"))
            )
    assert [p for p in problems if p] == []


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_credentials_are_referenced_from_secrets_never_inlined(overlay):
    docs = render(overlay)
    assert inlined_secrets(docs) == []
    env = {
        e["name"]: e
        for c in pod_containers(find(docs, "StatefulSet", "ghtrader-questdb"))
        for e in c["env"]
    }
    # The server's PGWire password is the key the store's EnvVar reads, from the same Secret.
    assert env["QDB_PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": CREDENTIALS_SECRET,
        "key": "GHTRADER_QDB_PASSWORD",
    }
    pg_env = {
        e["name"]: e
        for c in pod_containers(find(docs, "StatefulSet", "ghtrader-postgres"))
        for e in c["env"]
    }
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": load_values()["global"]["postgresqlSecretName"],
        "key": "postgresql-password",
    }


def test_secret_check_flags_an_inlined_password_and_a_secret_manifest():
    leaky = [
        {"kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"x": "y"}},
        {
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "c", "env": [{"name": "GHTRADER_TQ_PASSWORD", "value": "pw"}]}
                        ]
                    }
                }
            },
        },
        {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"GHTRADER_QDB_PASSWORD": "pw"}},
    ]
    assert len(inlined_secrets(leaky)) == 3


def test_image_and_resource_checks_reject_what_they_should():
    assert image_problem("questdb/questdb") and image_problem("questdb/questdb:latest")
    assert image_problem("registry.local:5000/ghtrader-assets")  # a port is not a tag
    assert image_problem("questdb/questdb:9.4.3") is None
    assert image_problem("registry.local:5000/ghtrader-assets:0.1.0") is None
    assert (
        resources_problem("x", {"requests": {"cpu": "1"}})
        == "x: resources miss requests.memory, limits.memory"
    )
    assert (
        resources_problem(
            "x", {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
        )
        is None
    )


# --- Helm values for the dagster chart -----------------------------------------------------


def test_helm_values_conform_to_the_chart_schema():
    assert schema_errors(load_values()) == []


def test_chart_schema_catches_a_misspelled_or_mistyped_value():
    values = load_values()
    typo = copy.deepcopy(values)
    typo["dagsterDaemon"]["runMonitorng"] = {"enabled": True}
    wrong_type = copy.deepcopy(values)
    wrong_type["runLauncher"]["type"] = "K8sLauncher"
    pool_typo = copy.deepcopy(values)
    pool_typo["concurrency"]["pools"]["defaultLimt"] = 4
    assert any("runMonitorng" in e for e in schema_errors(typo))
    assert any("defaultLimt" in e for e in schema_errors(pool_typo))
    assert any("runLauncher/type" in e for e in schema_errors(wrong_type))


def test_runs_launch_as_kubernetes_jobs_from_the_code_image():
    values = load_values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    # No launcher image: each run uses its code location's image, so code and run match.
    assert launcher.get("image") is None
    assert launcher["runK8sConfig"]["jobSpecConfig"]["backoffLimit"] == 0
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    attribute = args[args.index("--attribute") + 1]
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]
    assert (module, attribute) == (
        workspace["python_module"]["module_name"],
        workspace["python_module"]["attribute"],
    )
    # What the code server will load is a Definitions object.
    assert isinstance(getattr(importlib.import_module(module), attribute), dagster.Definitions)


def test_images_are_pinned_to_the_chart_release():
    values = load_values()
    version = chart_version()
    dagster_images = [values["dagsterWebserver"]["image"], values["dagsterDaemon"]["image"]]
    assert {str(i["tag"]) for i in dagster_images} == {version}
    images = dagster_images + [
        d["image"] for d in values["dagster-user-deployments"]["deployments"]
    ]
    images.append(values["postgresql"]["image"])
    problems = [image_problem(f"{i['repository']}:{i['tag']}") for i in images]
    assert [p for p in problems if p] == []


def test_versions_agree_across_chart_image_and_pyproject():
    version = chart_version()
    major, minor, patch = (int(x) for x in version.split("."))
    installed = tuple(int(x) for x in dagster.__version__.split(".")[:2])
    assert (major, minor) == installed, (
        f"chart {version} vs installed dagster {dagster.__version__}"
    )
    assert dockerfile_arg("DAGSTER_VERSION") == version
    libs = f"0.{minor + 16}.{patch}"  # dagster 1.N ships its libraries as 0.(N+16)
    assert dockerfile_arg("DAGSTER_LIBS_VERSION") == libs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"dagster>={major}.{minor},<{major}.{minor + 1}" in project["dependencies"]
    k8s_extra = project["optional-dependencies"]["k8s"]
    for lib in ("dagster-k8s", "dagster-postgres"):
        assert f"{lib}>=0.{minor + 16},<0.{minor + 17}" in k8s_extra


def test_instance_keeps_the_local_pools_run_queue_and_retries(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    instance = chart_instance_config(load_values())
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    validated, _ = dagster_instance_config(str(tmp_path))  # Dagster's own validation
    local = yaml.safe_load(LOCAL_INSTANCE.read_text())
    pools = validated["concurrency"]["pools"]
    assert pools["default_limit"] == local["concurrency"]["pools"]["default_limit"] == 4
    assert pools["granularity"] == local["concurrency"]["pools"]["granularity"] == "op"
    assert validated["concurrency"]["runs"] == local["concurrency"]["runs"]
    assert validated["run_retries"] == local["run_retries"]
    assert validated["run_monitoring"]["enabled"] is True
    assert validated["run_launcher"]["class"] == "K8sRunLauncher"
    assert validated["auto_materialize"]["use_sensors"] is True


def test_instance_check_rejects_queue_limits_in_two_places(tmp_path):
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    values = load_values()
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] = {
        "maxConcurrentRuns": 8
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(chart_instance_config(values)))
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        dagster_instance_config(str(tmp_path))


def test_helm_values_reference_secrets_and_inline_none():
    values = load_values()
    text = VALUES.read_text()
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]

    def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield f"{path}/{key}", value
                yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}/{i}")

    leaks = [
        path
        for path, value in walk(values)
        if SECRET_NAME.search(path.rsplit("/", 1)[-1])
        and not path.endswith("SecretName")
        and isinstance(value, str | int)
        and not isinstance(value, bool)
        and str(value)
    ]
    assert leaks == []
    assert not any(var in yaml.safe_dump(values) for var in SECRET_VARS)  # only comments name them
    assert all(var in text for var in SECRET_VARS)  # ...and they do, for the reader
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for env_secrets in (deployment["envSecrets"], launcher["envSecrets"]):
        assert env_secrets == [{"name": CREDENTIALS_SECRET}]
    settings = (K8S / "base" / "ghtrader.env").read_text()
    assert not [v for v in SECRET_VARS if re.search(rf"^{v}=", settings, re.MULTILINE)]


def test_every_dagster_pod_has_resources():
    values = load_values()
    owners = {
        "dagsterWebserver": values["dagsterWebserver"].get("resources"),
        "dagsterDaemon": values["dagsterDaemon"].get("resources"),
        "run pods": values["runLauncher"]["config"]["k8sRunLauncher"].get("resources"),
    }
    for deployment in values["dagster-user-deployments"]["deployments"]:
        owners[deployment["name"]] = deployment.get("resources")
    problems = [resources_problem(owner, res) for owner, res in owners.items()]
    assert [p for p in problems if p] == []


# --- the code image -------------------------------------------------------------------------


def test_dockerfile_builds_a_pinned_non_root_image_with_the_k8s_extra():
    text = DOCKERFILE.read_text()
    (base,) = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert image_problem(base) is None
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    # The dependency layer's requirements come from pyproject: run that step's script here.
    script = re.search(
        r"^RUN python - <<'EOF' > /tmp/requirements.txt\n(.*?)^EOF$", text, re.S | re.M
    )
    assert script, "infra/Dockerfile: no requirements step"
    proc = subprocess.run(
        [sys.executable, "-"], input=script.group(1), cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["k8s"]
    assert proc.stdout.split() == wanted
    assert any(r.startswith("dagster-k8s") for r in wanted)
    ignore = (ROOT / "infra" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[[line.startswith("#") for line in ignore].index(False)] == "*"  # allow-list
    copied = re.findall(r"^COPY (\S+)", text, re.MULTILINE)
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert {c.rstrip("/") for c in copied} <= allowed


# --- several TqSdk accounts ---------------------------------------------------------------


def test_the_accounts_values_conform_and_reference_one_secret_per_account():
    values = accounts_values()
    assert schema_errors(values) == []
    accounts = component_accounts()
    assert accounts == ("a", "b")
    assert account_secret_problems(values, accounts) == []
    # Referenced, never inlined: no value of a credential-named key anywhere.
    assert not any(var in yaml.safe_dump(values) for var in SECRET_VARS)
    # Helm replaces lists: the repeated deployment must stay values.yaml's but for envSecrets.
    (base,) = load_values()["dagster-user-deployments"]["deployments"]
    (layered,) = values["dagster-user-deployments"]["deployments"]
    assert {k: v for k, v in layered.items() if k != "envSecrets"} == {
        k: v for k, v in base.items() if k != "envSecrets"
    }
    single = load_values()
    assert values["runLauncher"]["config"]["k8sRunLauncher"] | {"envSecrets": []} == single[
        "runLauncher"
    ]["config"]["k8sRunLauncher"] | {"envSecrets": []}


def test_account_secret_check_flags_a_missing_or_extra_secret():
    values = accounts_values()
    missing_b = copy.deepcopy(values)
    (deployment,) = missing_b["dagster-user-deployments"]["deployments"]
    deployment["envSecrets"] = [e for e in deployment["envSecrets"] if not e["name"].endswith("b")]
    assert account_secret_problems(missing_b, ("a", "b")) == [
        "code server: envSecrets ['ghtrader-credentials', 'ghtrader-tq-account-a'], expected "
        "['ghtrader-credentials', 'ghtrader-tq-account-a', 'ghtrader-tq-account-b']"
    ]
    assert len(account_secret_problems(values, ("a",))) == 2  # b's Secret, but no account b
    assert len(account_secret_problems(load_values(), ("a", "b"))) == 2  # single-account values


def test_every_accounts_pool_gets_its_slots_and_the_run_queue_can_fill_them(tmp_path):
    """The instance the chart renders from both values files: each account's pool gets the
    default limit when first used (Dagster's own pool initialisation), and enough backfill
    runs may run at once to keep every slot busy (a run pod downloads one day at a time)."""
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.test_utils import instance_for_test

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(chart_instance_config(accounts_values())))
    validated, _ = dagster_instance_config(str(tmp_path))
    concurrency = validated["concurrency"]
    limit = concurrency["pools"]["default_limit"]
    assert limit == 4  # one Shinnytech account's concurrent downloads
    pools = [f"tqsdk_{a}" for a in component_accounts()]
    with instance_for_test(overrides={"concurrency": concurrency}) as instance:
        slots = instance.event_log_storage
        for pool in pools:
            assert slots.initialize_concurrency_limit_to_default(pool)
            assert slots.get_concurrency_info(pool).slot_count == limit
            claims = [slots.claim_concurrency_slot(pool, f"run-{i}", "step") for i in range(5)]
            assert [c.is_claimed for c in claims] == [True] * limit + [False]
    runs = concurrency["runs"]
    backfill = next(t for t in runs["tag_concurrency_limits"] if t["key"] == "dagster/backfill")
    assert backfill["limit"] >= len(pools) * limit
    assert runs["max_concurrent_runs"] > backfill["limit"]  # room for the daily runs
    assert validated["run_launcher"]["config"]["env_secrets"] == [
        CREDENTIALS_SECRET,
        *(f"ghtrader-tq-account-{a}" for a in component_accounts()),
    ]


@needs_kubectl
def test_the_accounts_component_puts_the_mapping_into_the_settings(tmp_path):
    """The overlay with its `components:` lines uncommented, as the README says, renders the
    accounts into ghtrader-config next to the other settings; without them there is none."""
    copy_root = tmp_path / "k8s"
    shutil.copytree(K8S, copy_root, ignore=shutil.ignore_patterns("schema"))
    overlay = copy_root / "overlays" / "ingest" / "kustomization.yaml"
    text = overlay.read_text()
    enabled = text.replace("# components:", "components:").replace(
        "#   - ../../components/tq-accounts", "  - ../../components/tq-accounts"
    )
    assert enabled != text, "the ingest overlay has no commented tq-accounts component"
    overlay.write_text(enabled)
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(overlay.parent)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    config = find(docs, "ConfigMap", "ghtrader-config")["data"]
    expected = env_file(ACCOUNTS_COMPONENT / "tq-accounts.env")["GHTRADER_TQ_ACCOUNTS"]
    assert config["GHTRADER_TQ_ACCOUNTS"] == expected
    assert config["GHTRADER_SOURCE"] == "tqsdk" and config["GHTRADER_STORE"] == "questdb"
    assert inlined_secrets(docs) == []
    single = find(render("ingest"), "ConfigMap", "ghtrader-config")["data"]
    assert "GHTRADER_TQ_ACCOUNTS" not in single
