"""The container deployment (compose.yaml, deploy/Dockerfile, deploy/otel-collector.yaml) agrees
with the code: every service is there, wired to healthy dependencies, and configured with
environment names `Settings` actually reads."""

import fnmatch
import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices

from shared.kernel import subjects
from shared.kernel.settings import Settings
from shared.tools.stack import ADAPTERS, load_service, service_module

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COLLECTOR = ROOT / "deploy" / "otel-collector.yaml"
NATS_CONF = ROOT / "deploy" / "nats" / "nats-server.conf"
K8S = ROOT / "deploy" / "k8s"

IMAGE = "one-on-a-bus:local"


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the x-* anchors and `<<` merges


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _command(service: dict) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def _healthcheck_argv(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return list(test)


def settings_class(process: str) -> type[Settings]:
    """The settings a process reads: a service's own class, the mailer's is tenancy's, `migrate` the common ones."""
    if process in ADAPTERS:
        return service_module("tenancy", "settings").TenancySettings
    return load_service(process).settings if process in subjects.SERVICES else Settings


def accepted_env_names(settings: type[Settings] = Settings) -> set[str]:
    """Every environment name `settings` reads: ONE_<FIELD>, plus each validation alias."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{name}".upper())
    return {n.upper() for n in names}


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    logical, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        elif not stages:
            continue  # ARG before the first FROM
        stages[-1].append((instruction, args.strip()))
    return stages


# ---- compose: the six services ---------------------------------------------------------------


def test_every_service_is_deployed_with_the_shared_image(services: dict) -> None:
    for name in subjects.SERVICES:
        assert name in services, f"{name} is missing from compose.yaml"
        service = services[name]
        assert service.get("image") == IMAGE, f"{name} must run {IMAGE}"
        assert _command(service) == ["serve", name], f"{name} must run `serve {name}`"


SCHEMALESS = {name for name in subjects.SERVICES if not load_service(name).owns_schema}
"""Services without a schema (the gateway): no database, no migration to wait for."""


def test_services_wait_for_healthy_infrastructure_and_the_migration(services: dict) -> None:
    assert SCHEMALESS == {"gateway"}
    for name in subjects.SERVICES:
        depends = services[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a bare list"
        assert depends.get("nats", {}).get("condition") == "service_healthy", name
        if name in SCHEMALESS:
            assert set(depends) == {"nats"}, f"{name} owns no schema: it waits for the broker only"
            continue
        assert depends.get("postgres", {}).get("condition") == "service_healthy", name
        assert depends.get("migrate", {}).get("condition") == "service_completed_successfully", name


def test_services_have_their_own_healthcheck(services: dict) -> None:
    for name in subjects.SERVICES:
        service = services[name]
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable", False), name
        if name != "gateway":
            assert _healthcheck_argv(service) == ["CMD", "one", "health", name]


def test_the_gateway_publishes_its_port_and_is_healthy_when_ready(services: dict) -> None:
    from services.gateway.settings import GatewaySettings

    gateway = services["gateway"]
    default_port = GatewaySettings.model_fields["gateway_port"].default
    assert gateway["ports"] == [f"${{ONE_GATEWAY_PORT:-{default_port}}}:{default_port}"]
    assert _env(gateway)["ONE_GATEWAY_HOST"] == "0.0.0.0"
    argv = _healthcheck_argv(gateway)
    assert argv[:3] == ["CMD", "python", "-c"] and f"http://127.0.0.1:{default_port}/readyz" in argv[3]
    compile(argv[3], "healthcheck", "exec")  # the check is Python the image runs


def test_services_restart_and_get_time_to_drain(services: dict) -> None:
    for name in subjects.SERVICES:
        service = services[name]
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name
        grace = str(service.get("stop_grace_period", ""))
        match = re.fullmatch(r"(\d+)s", grace)
        assert match and int(match.group(1)) >= 10, f"{name}: stop_grace_period {grace!r}"


def test_migrate_builds_the_image_and_runs_once(services: dict) -> None:
    migrate = services["migrate"]
    assert migrate.get("image") == IMAGE
    build = migrate.get("build")
    assert isinstance(build, dict)
    assert (ROOT / build.get("context", ".") / build["dockerfile"]).resolve() == DOCKERFILE
    assert _command(migrate) == ["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart") == "no"  # quoted in YAML: a bare `no` would be False


def test_only_migrate_builds(services: dict) -> None:
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["migrate"]


# ---- compose: infrastructure -----------------------------------------------------------------


def _interpolated(value: str, env: dict[str, str] | None = None) -> str:
    """What compose makes of `${VAR:-default}` / `${VAR}` with `env` as the shell environment."""
    env = env or {}

    def one(match: re.Match) -> str:
        name, default = match.group(1), match.group(3)
        return env.get(name) or (default if default is not None else "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}", one, value)


def nats_conf_users() -> dict[str, str]:
    """user -> the environment variable nats-server reads its password from."""
    text = NATS_CONF.read_text()
    return dict(re.findall(r"\{\s*user\s*=\s*([\w-]+)\s*,\s*password\s*=\s*\$(\w+)\s*,", text))


def test_nats_has_jetstream_storage_and_a_healthcheck(compose: dict, services: dict) -> None:
    nats = services["nats"]
    command = _command(nats)
    assert "-js" in command
    store = command[command.index("-sd") + 1]
    assert any(v.split(":")[1] == store for v in nats["volumes"]), "JetStream store must be on a volume"
    monitor = command[command.index("-m") + 1]
    probe = " ".join(_healthcheck_argv(nats))
    assert f":{monitor}/healthz" in probe
    named = {v.split(":")[0] for v in nats["volumes"] if not v.startswith((".", "/"))}  # bind mounts aside
    assert named <= set(compose.get("volumes") or {})


def test_postgres_has_pgvector_a_volume_and_a_healthcheck(compose: dict, services: dict) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("pgvector/pgvector:")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert {v.split(":")[0] for v in postgres["volumes"]} <= set(compose.get("volumes") or {})
    probe = _healthcheck_argv(postgres)
    assert "pg_isready" in " ".join(probe)
    for key in ("interval", "retries", "start_period"):
        assert key in postgres["healthcheck"], key


def test_dependencies_name_services_that_exist(services: dict) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for dependency in depends:
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = depends[dependency]["condition"] if isinstance(depends, dict) else None
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_nats_runs_the_permission_config(services: dict) -> None:
    nats = services["nats"]
    command = _command(nats)
    config_path = command[command.index("-c") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in nats["volumes"]}
    assert (ROOT / mounts[config_path]).resolve() == NATS_CONF
    assert nats["volumes"][-1].endswith(":ro") or any(v.endswith(f"{config_path}:ro") for v in nats["volumes"])


def test_nats_config_has_a_user_per_service_and_the_cli() -> None:
    users = nats_conf_users()
    assert set(users) == {*subjects.SERVICES, *ADAPTERS, "cli"}
    for user, variable in users.items():
        assert variable == f"ONE_NATS_{user.upper()}_PASSWORD"
    text = NATS_CONF.read_text()
    assert "no_auth_user" not in text, "an anonymous user would bypass every permission"
    assert not re.search(r"password\s*=\s*[\"']", text), "passwords come from the environment, not the file"


def test_every_nats_user_has_its_password_in_the_nats_environment(services: dict) -> None:
    env = _env(services["nats"])
    for user, variable in nats_conf_users().items():
        assert variable in env, f"nats-server cannot resolve ${variable} for {user}"
        assert _interpolated(env[variable]), f"{user}: empty password"
        assert _interpolated(env[variable], {variable: "from-the-shell"}) == "from-the-shell", f"{user}: not overridable"


def test_each_service_logs_in_to_nats_as_itself(services: dict) -> None:
    nats_env = _env(services["nats"])
    users = nats_conf_users()
    passwords = set()
    for name in subjects.SERVICES:
        env = _env(services[name])
        assert env.get("ONE_NATS_USER") == name, f"{name} must log in as its own NATS user"
        assert env.get("ONE_NATS_PASSWORD") == nats_env[users[name]], f"{name}: password differs from the server's"
        passwords.add(_interpolated(env["ONE_NATS_PASSWORD"]))
    assert len(passwords) == len(subjects.SERVICES), "every service has its own password"
    assert "ONE_NATS_USER" not in _env(services["migrate"]), "the migration needs no bus"


def test_the_mailer_runs_the_image_with_its_own_nats_user_and_no_database(services: dict) -> None:
    mailer = services["mailer"]
    assert mailer.get("image") == IMAGE and _command(mailer) == ["mailer"]
    assert _healthcheck_argv(mailer) == ["CMD", "one", "mailer", "--check"]
    assert mailer["depends_on"]["nats"]["condition"] == "service_healthy"
    assert mailer.get("restart") == "unless-stopped"
    env = _env(mailer)
    assert env["ONE_NATS_USER"] == "mailer"
    assert env["ONE_NATS_PASSWORD"] == _env(services["nats"])[nats_conf_users()["mailer"]]
    assert not {"ONE_DATABASE_URL", "ONE_DB_APP_PASSWORD"} & set(env), "the mailer needs no database"
    accepted = accepted_env_names(settings_class("mailer"))
    unknown = {key for key in env if key.startswith(("ONE_", "OTEL_")) and key.upper() not in accepted}
    assert not unknown, f"mailer: its settings read none of {sorted(unknown)}"
    smtp = {k.removeprefix("ONE_").lower(): _interpolated(v) for k, v in env.items() if k.startswith("ONE_SMTP")}
    settings = settings_class("mailer")(**smtp)
    assert not settings.smtp_host and settings.smtp_starttls  # no relay by default: .eml files in the container


# ---- compose: environment vs Settings --------------------------------------------------------


def test_every_one_and_otel_variable_is_read_by_settings(services: dict) -> None:
    for name in (*subjects.SERVICES, "migrate"):
        env = _env(services[name])
        accepted = accepted_env_names(settings_class(name))
        unknown = {key for key in env if key.startswith(("ONE_", "OTEL_")) and key.upper() not in accepted}
        assert not unknown, f"{name}: its settings read none of {sorted(unknown)}"


def test_accepted_names_are_computed_from_settings() -> None:
    accepted = accepted_env_names()
    assert {"ONE_DATABASE_URL", "DATABASE_URL", "ONE_NATS_URL", "ONE_DB_APP_PASSWORD"} <= accepted
    assert {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "ONE_TRACE_SAMPLE_RATIO"} <= accepted
    assert "ONE_NO_SUCH_SETTING" not in accepted
    assert "ONE_API_KEY_PEPPER" in accepted_env_names(settings_class("tenancy")) and "ONE_API_KEY_PEPPER" not in accepted


def test_settings_built_from_the_compose_environment(services: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_env = _env(services["postgres"])
    for name in subjects.SERVICES:
        with monkeypatch.context() as patch:
            for key in list(os.environ):
                if key.startswith(("ONE_", "OTEL_")) or key in {"DATABASE_URL", "NATS_URL"}:
                    patch.delenv(key)
            for key, value in _env(services[name]).items():
                patch.setenv(key, value)
            settings = settings_class(name)()

        assert settings.otel_service_name == name
        assert settings.db_app_password is not None, f"{name}: the app role needs a password"

        db = urlsplit(settings.database_url or "")
        assert db.hostname == "postgres" and db.port == 5432
        assert db.username == postgres_env["POSTGRES_USER"]
        assert db.password == postgres_env["POSTGRES_PASSWORD"]
        assert db.path.lstrip("/") == postgres_env["POSTGRES_DB"]

        assert urlsplit(settings.nats_url or "").hostname == "nats"
        assert settings.nats_user == name and settings.nats_password is not None
        assert urlsplit(settings.otel_endpoint or "").hostname in services
        assert 0.0 <= settings.trace_sample_ratio <= 1.0

    # `migrate` sets the password the services then log in with.
    app_passwords = {_env(services[n])["ONE_DB_APP_PASSWORD"] for n in (*subjects.SERVICES, "migrate")}
    assert len(app_passwords) == 1


# ---- tracing ---------------------------------------------------------------------------------


def test_collector_receives_otlp_and_exports_to_jaeger(services: dict) -> None:
    collector = services["otel-collector"]
    assert any(v.split(":")[0] in {"./deploy/otel-collector.yaml", "deploy/otel-collector.yaml"}
               for v in collector["volumes"])
    config = yaml.safe_load(COLLECTOR.read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    exporter = config["exporters"]["otlp"]
    assert exporter["endpoint"] == "jaeger:4317"
    assert exporter["tls"]["insecure"] is True
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and "batch" in traces["processors"] and traces["exporters"] == ["otlp"]
    for processor in traces["processors"]:
        assert processor in config["processors"]

    jaeger = services["jaeger"]
    assert str(_env(jaeger).get("COLLECTOR_OTLP_ENABLED")).lower() == "true"
    assert any(str(p).endswith("16686") for p in jaeger["ports"])


# ---- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_with_a_slim_non_root_runtime() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    final = stages[-1]
    users = [args for instruction, args in final if instruction == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    base_images = [stage[0][1].split()[0] for stage in stages]
    assert base_images[0] == base_images[-1], "the venv's python symlinks need the same base image"


def test_final_stage_installs_no_build_tools() -> None:
    final = dockerfile_stages()[-1]
    runs = " ".join(args for instruction, args in final if instruction == "RUN")
    for tool in ("gcc", "g++", "build-essential", "make ", "libpq-dev", "python3-dev"):
        assert tool not in runs, f"final stage installs {tool.strip()}"
    copies = [args for instruction, args in final if instruction == "COPY"]
    assert any(args.startswith("--from=") and "/opt/venv" in args for args in copies)
    assert all(args.startswith("--from=") for args in copies), "the final stage copies only from the builder"


def test_final_stage_runs_the_one_cli() -> None:
    final = dict(dockerfile_stages()[-1])
    assert final.get("ENTRYPOINT") == '["one"]'
    assert "/opt/venv/bin" in final.get("ENV", "") and "PYTHONUNBUFFERED=1" in final.get("ENV", "")
    assert final.get("STOPSIGNAL") == "SIGTERM"


def test_build_context_has_what_the_builder_copies() -> None:
    ignored = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    for required in (".venv", ".git", "tests"):
        assert required in ignored, f".dockerignore should exclude {required}"
    builder = dockerfile_stages()[0]
    sources = []
    for instruction, args in builder:
        if instruction in {"COPY", "ADD"} and not args.startswith("--from="):
            sources.extend(p for p in args.split()[:-1] if not p.startswith("--"))
    assert "pyproject.toml" in sources
    for source in sources:
        path = source.rstrip("/")
        assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), f"{path} is dockerignored"
        if not any(ch in path for ch in "*?["):
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"


# ---- NATS permissions: one source, two renderings ---------------------------------------------


def nats_conf_permissions(text: str) -> dict[str, dict]:
    """user -> {"publish": {"allow": [...], "deny": [...]}, "subscribe": {...}, "allow_responses": bool}."""
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # no subject contains "#"
    variables = {m.group(1): re.findall(r'"([^"]+)"', m.group(2))
                 for m in re.finditer(r"^(\w+_SUBJECTS) = \[(.*?)\]", text, re.S | re.M)}
    blocks = {m.group(1): m.group(2) for m in re.finditer(r"^(\w+)_PERMISSIONS = \{(.*?)\n\}", text, re.S | re.M)}
    users = dict(re.findall(r"\{\s*user\s*=\s*([\w-]+)\s*,.*?permissions\s*=\s*\$(\w+)_PERMISSIONS", text))

    def section(block: str, name: str) -> dict:
        found = re.search(name + r" = \{(.*?)\}\n", block, re.S) or re.search(name + r" = \{(.*?)\}", block, re.S)
        result = {}
        if found:
            body = found.group(1)
            for kind in ("allow", "deny"):
                listed = re.search(kind + r" = \[(.*?)\]", body, re.S)
                ref = re.search(kind + r" = \$(\w+)", body)
                if listed:
                    result[kind] = re.findall(r'"([^"]+)"', listed.group(1))
                elif ref:
                    result[kind] = variables[ref.group(1)]
        return result

    return {
        user: {"publish": section(blocks[var], "publish"), "subscribe": section(blocks[var], "subscribe"),
               "allow_responses": "allow_responses = true" in blocks[var]}
        for user, var in users.items()
    }


def test_nats_conf_permissions_parse() -> None:
    permissions = nats_conf_permissions(NATS_CONF.read_text())
    assert set(permissions) == {*subjects.SERVICES, *ADAPTERS, "cli"}
    for name in subjects.SERVICES:
        own = subjects.command(name, ">")
        assert own in permissions[name]["subscribe"]["allow"], name
        assert "_INBOX.>" in permissions[name]["subscribe"]["allow"], name
        assert permissions[name]["allow_responses"], f"{name} could not reply"
        assert not any(s.startswith("_INBOX") for s in permissions[name]["publish"]["allow"]), f"{name} may forge replies"
        others = [s for s in permissions[name]["subscribe"]["allow"] if s.startswith("one.") and not s.startswith(f"one.{name}.")]
        # beyond its own subjects: the agents take A2A traffic, commerce the payment protocols'; the gateway
        # follows run steps (AG-UI and A2A streams); tenancy mails the person-email notices of fired reminders
        payments = ["one.proto.acp.>", "one.proto.x402.>", "one.proto.ap2.>"]
        expected = ([], ["one.proto.a2a.>"], payments, ["one.agents.steps.>"], ["one.notify.person_email"])
        assert others in expected, f"{name} listens to {others}"
        assert "$JS.API.>" not in permissions[name]["publish"]["allow"]
    consumers = {n: {s for s in p["publish"].get("allow", []) if ".CONSUMER." in s} for n, p in permissions.items()}
    # the ingest, the ingestion trigger, the graph's identity mirror
    assert {n for n, c in consumers.items() if c} == {"eventlog", "knowledge", "graph"}
    assert all(s.endswith((".knowledge-ingest", ".knowledge-ingest.>")) for s in consumers["knowledge"])
    assert all(s.endswith((".graph-identity", ".graph-identity.>")) for s in consumers["graph"])
    assert permissions["cli"]["subscribe"]["allow"] == ["_INBOX.>"]
    mailer = permissions["mailer"]  # reads the mail drop, says nothing
    assert mailer == {"publish": {"deny": [">"]}, "subscribe": {"allow": [subjects.notify("email")]}, "allow_responses": False}


# ---- Kubernetes ----------------------------------------------------------------------------------


def _k8s_docs(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects: dict[tuple[str, str], dict] = {}
    for resource in kustomization["resources"]:
        for doc in _k8s_docs(resource):
            assert doc.get("apiVersion") and doc.get("kind"), f"{resource}: not a Kubernetes object"
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{key} declared twice"
            objects[key] = doc
    return objects


def _containers(objects: dict, kind: str) -> dict[str, dict]:
    return {
        name: doc["spec"]["template"]["spec"]["containers"][0]
        for (k, name), doc in objects.items() if k == kind
    }


def test_every_manifest_parses_and_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    examples = {"nats-values.yaml", "secrets.example.yaml", "ingress.example.yaml"}
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", *examples}
    assert listed == on_disk
    for path in K8S.glob("*.yaml"):
        assert list(yaml.safe_load_all(path.read_text())), path.name


def test_a_deployment_with_probes_and_resources_per_service(k8s: dict) -> None:
    deployments = {name: doc for (kind, name), doc in k8s.items() if kind == "Deployment"}
    assert set(deployments) == {f"one-{s}" for s in (*subjects.SERVICES, *ADAPTERS)}
    for service in subjects.SERVICES:
        doc = deployments[f"one-{service}"]
        spec = doc["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 10
        container = spec["template"]["spec"]["containers"][0]
        assert container["args"] == ["serve", service]
        if service == "gateway":  # probed over HTTP: test_the_gateway_has_a_service_http_probes_and_an_ingress
            continue
        for probe in ("readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:3] == ["one", "health", service], f"{service} {probe}"
            assert container[probe]["timeoutSeconds"] > float(command[command.index("--timeout") + 1])
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{service} {kind}"
        pod_security = spec["template"]["spec"]["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0


def test_the_mailer_deployment_probes_its_heartbeat_and_has_no_database(k8s: dict) -> None:
    deployment = k8s[("Deployment", "one-mailer")]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2, "a lone mailer loses the drops sent while it restarts"
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"] == ["mailer"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == ["one", "mailer", "--check"], probe
    env = {e["name"]: e for e in container["env"]}
    assert env["ONE_NATS_USER"]["value"] == "mailer"
    assert env["ONE_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "one-nats", "key": "mailer"}
    assert env["ONE_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "one-mailer"
    assert not {"ONE_DATABASE_URL", "ONE_DB_APP_PASSWORD", "ONE_API_KEY_PEPPER"} & set(env)
    pdb = k8s[("PodDisruptionBudget", "one-mailer")]
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] < spec["replicas"]


def test_a_pdb_and_an_hpa_per_service(k8s: dict) -> None:
    for service in subjects.SERVICES:
        deployment = k8s[("Deployment", f"one-{service}")]
        pdb = k8s[("PodDisruptionBudget", f"one-{service}")]
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert pdb["spec"].get("minAvailable", 0) >= 1 or "maxUnavailable" in pdb["spec"]
        hpa = k8s[("HorizontalPodAutoscaler", f"one-{service}")]
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"one-{service}"}
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"], "a PDB equal to the replicas blocks every drain"


def test_one_image_everywhere(k8s: dict) -> None:
    images = {c["image"] for c in [*_containers(k8s, "Deployment").values(), *_containers(k8s, "Job").values()]}
    assert len(images) == 1
    [image] = images
    override = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"]
    assert [entry["name"] for entry in override] == [image.rsplit(":", 1)[0]]


def test_migration_job_runs_migrate_once(k8s: dict) -> None:
    job = k8s[("Job", "one-migrate")]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def _env_names(container: dict, objects: dict) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(objects[("ConfigMap", source["configMapRef"]["name"])]["data"])
    return names


def test_env_names_match_settings_and_secrets_stay_secret(k8s: dict) -> None:
    accepted = accepted_env_names()  # the ConfigMap reaches every process: common settings only
    secrets = {d["metadata"]["name"]: d for d in _k8s_docs("secrets.example.yaml") if d["kind"] == "Secret"}
    config = k8s[("ConfigMap", "one-config")]["data"]
    for key in config:
        assert key.upper() in accepted, f"ConfigMap one-config: Settings reads no {key}"
        assert "PASSWORD" not in key and "PEPPER" not in key and "DATABASE_URL" not in key, f"{key} belongs in a Secret"
    for name, container in {**_containers(k8s, "Deployment"), **_containers(k8s, "Job")}.items():
        names = _env_names(container, k8s)
        own = accepted_env_names(settings_class(name.removeprefix("one-")))
        unknown = {n for n in names if n.startswith(("ONE_", "OTEL_")) and n.upper() not in own}
        assert not unknown, f"{name}: its settings read none of {sorted(unknown)}"
        process = name.removeprefix("one-")
        without_database = process in ADAPTERS or process in SCHEMALESS
        needs = {"ONE_NATS_URL"} if without_database else {"ONE_DATABASE_URL", "ONE_DB_APP_PASSWORD", "ONE_NATS_URL"}
        assert needs <= names, name
        if process in SCHEMALESS:
            assert not {"ONE_DATABASE_URL", "ONE_DB_APP_PASSWORD"} & {e["name"] for e in container.get("env", [])}, name
        for entry in container.get("env", []):
            if any(word in entry["name"] for word in ("PASSWORD", "PEPPER", "DATABASE_URL")):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                assert ref, f"{name}: {entry['name']} must come from a Secret"
                assert ref["key"] in secrets[ref["name"]]["stringData"], f"{name}: {ref} not in secrets.example.yaml"


def test_each_service_logs_in_to_nats_as_itself_in_k8s(k8s: dict) -> None:
    for service in subjects.SERVICES:
        env = {e["name"]: e for e in _containers(k8s, "Deployment")[f"one-{service}"]["env"]}
        assert env["ONE_NATS_USER"]["value"] == service
        assert env["ONE_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "one-nats", "key": service}
        assert env["OTEL_SERVICE_NAME"]["value"] == service


def test_settings_built_from_the_k8s_environment(k8s: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    for service in subjects.SERVICES:
        container = _containers(k8s, "Deployment")[f"one-{service}"]
        with monkeypatch.context() as patch:
            for key in list(os.environ):
                if key.startswith(("ONE_", "OTEL_")) or key in {"DATABASE_URL", "NATS_URL"}:
                    patch.delenv(key)
            for key, value in k8s[("ConfigMap", "one-config")]["data"].items():
                patch.setenv(key, value)
            for entry in container["env"]:
                patch.setenv(entry["name"], entry.get("value", "from-a-secret"))
            settings = settings_class(service)()
        assert settings.events_stream_replicas == 3
        assert settings.nats_user == service and settings.otel_service_name == service
        assert urlsplit(settings.nats_url).hostname == "nats"


def test_nats_chart_values_cluster_jetstream_and_the_same_permissions() -> None:
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    config = values["config"]
    assert config["cluster"]["enabled"] is True and config["cluster"]["replicas"] == 3
    jetstream = config["jetstream"]
    assert jetstream["enabled"] is True and jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert jetstream["merge"]["sync_interval"] == "always"
    users = {u["user"]: u for u in config["merge"]["authorization"]["users"]}
    expected = nats_conf_permissions(NATS_CONF.read_text())
    assert set(users) == set(expected)
    env = values["container"]["env"]
    for user, permissions in expected.items():
        rendered = users[user]
        variable = f"ONE_NATS_{user.upper()}_PASSWORD"
        assert rendered["password"] == f"<< ${variable} >>"
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "one-nats", "key": user}
        got = rendered["permissions"]
        assert got["publish"] == permissions["publish"], f"{user}: publish differs from nats-server.conf"
        assert got["subscribe"] == permissions["subscribe"], f"{user}: subscribe differs from nats-server.conf"
        assert got.get("allow_responses", False) == permissions["allow_responses"], user


def test_postgres_cluster_has_pgvector() -> None:
    [cluster] = _k8s_docs("postgres-cluster.yaml")
    assert cluster["apiVersion"].startswith("postgresql.cnpg.io/") and cluster["kind"] == "Cluster"
    assert cluster["spec"]["instances"] >= 3
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    assert any("CREATE EXTENSION IF NOT EXISTS vector" in sql for sql in initdb["postInitApplicationSQL"])
    secrets = {d["metadata"]["name"] for d in _k8s_docs("secrets.example.yaml")}
    assert initdb["secret"]["name"] in secrets
    database_url = next(d for d in _k8s_docs("secrets.example.yaml") if d["metadata"]["name"] == "one-db")["stringData"]["database-url"]
    url = urlsplit(database_url)
    assert url.hostname == f"{cluster['metadata']['name']}-rw" and url.path.lstrip("/") == initdb["database"]
    assert url.username == initdb["owner"]


def test_every_pod_serves_metrics_where_its_annotations_say(k8s: dict) -> None:
    port = int(k8s[("ConfigMap", "one-config")]["data"]["ONE_METRICS_PORT"])
    for name, doc in k8s.items():
        if name[0] != "Deployment":
            continue
        template = doc["spec"]["template"]
        container = template["spec"]["containers"][0]
        assert {"configMapRef": {"name": "one-config"}} in container["envFrom"], name
        assert {"name": "metrics", "containerPort": port} in container["ports"], name
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and int(annotations["prometheus.io/port"]) == port, name


def test_every_compose_service_and_the_mailer_serve_metrics(services: dict) -> None:
    for name in (*subjects.SERVICES, *ADAPTERS):
        assert int(services[name]["environment"]["ONE_METRICS_PORT"]) > 0, name


def test_the_gateway_has_a_service_http_probes_and_an_ingress(k8s: dict) -> None:
    from services.gateway.settings import GatewaySettings

    deployment = k8s[("Deployment", "one-gateway")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = int(env.get("ONE_GATEWAY_PORT") or GatewaySettings.model_fields["gateway_port"].default)
    assert env["ONE_GATEWAY_HOST"] == "0.0.0.0"
    assert {"name": "http", "containerPort": port} in container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    replicas = int(env["ONE_GATEWAY_REPLICAS"])
    hpa = k8s[("HorizontalPodAutoscaler", "one-gateway")]
    assert hpa["spec"]["minReplicas"] <= replicas <= hpa["spec"]["maxReplicas"]

    service = k8s[("Service", "one-gateway")]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    [http] = service["spec"]["ports"]
    assert http["targetPort"] == "http" and http["name"] == "http"

    [ingress] = _k8s_docs("ingress.example.yaml")
    assert ingress["kind"] == "Ingress"
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {p["path"] for p in paths} >= {"/v1", "/openapi.json"}
    assert not {"/metrics", "/healthz", "/readyz", "/"} & {p["path"] for p in paths}, "ops endpoints stay inside"
    for path in paths:
        assert path["backend"]["service"] == {"name": "one-gateway", "port": {"name": http["name"]}}
