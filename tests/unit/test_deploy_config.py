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

from shared import subjects
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COLLECTOR = ROOT / "deploy" / "otel-collector.yaml"

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


def accepted_env_names() -> set[str]:
    """Every environment name `Settings` reads: ONE_<FIELD>, plus each validation alias."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = set()
    for name, field in Settings.model_fields.items():
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


def test_services_wait_for_healthy_infrastructure_and_the_migration(services: dict) -> None:
    for name in subjects.SERVICES:
        depends = services[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a bare list"
        assert depends.get("nats", {}).get("condition") == "service_healthy", name
        assert depends.get("postgres", {}).get("condition") == "service_healthy", name
        assert depends.get("migrate", {}).get("condition") == "service_completed_successfully", name


def test_services_have_their_own_healthcheck(services: dict) -> None:
    for name in subjects.SERVICES:
        service = services[name]
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable", False), name
        assert _healthcheck_argv(service) == ["CMD", "one", "health", name]


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


def test_nats_has_jetstream_storage_and_a_healthcheck(compose: dict, services: dict) -> None:
    nats = services["nats"]
    command = _command(nats)
    assert "-js" in command
    store = command[command.index("-sd") + 1]
    assert any(v.split(":")[1] == store for v in nats["volumes"]), "JetStream store must be on a volume"
    monitor = command[command.index("-m") + 1]
    probe = " ".join(_healthcheck_argv(nats))
    assert f":{monitor}/healthz" in probe
    assert {v.split(":")[0] for v in nats["volumes"]} <= set(compose.get("volumes") or {})


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


# ---- compose: environment vs Settings --------------------------------------------------------


def test_every_one_and_otel_variable_is_read_by_settings(services: dict) -> None:
    accepted = accepted_env_names()
    for name in (*subjects.SERVICES, "migrate"):
        env = _env(services[name])
        unknown = {key for key in env if key.startswith(("ONE_", "OTEL_")) and key.upper() not in accepted}
        assert not unknown, f"{name}: Settings reads none of {sorted(unknown)}"


def test_accepted_names_are_computed_from_settings() -> None:
    accepted = accepted_env_names()
    assert {"ONE_DATABASE_URL", "DATABASE_URL", "ONE_NATS_URL", "ONE_DB_APP_PASSWORD"} <= accepted
    assert {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "ONE_TRACE_SAMPLE_RATIO"} <= accepted
    assert "ONE_NO_SUCH_SETTING" not in accepted


def test_settings_built_from_the_compose_environment(services: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_env = _env(services["postgres"])
    for name in subjects.SERVICES:
        with monkeypatch.context() as patch:
            for key in list(os.environ):
                if key.startswith(("ONE_", "OTEL_")) or key in {"DATABASE_URL", "NATS_URL"}:
                    patch.delenv(key)
            for key, value in _env(services[name]).items():
                patch.setenv(key, value)
            settings = Settings()

        assert settings.otel_service_name == name
        assert settings.db_app_password is not None, f"{name}: the app role needs a password"

        db = urlsplit(settings.database_url or "")
        assert db.hostname == "postgres" and db.port == 5432
        assert db.username == postgres_env["POSTGRES_USER"]
        assert db.password == postgres_env["POSTGRES_PASSWORD"]
        assert db.path.lstrip("/") == postgres_env["POSTGRES_DB"]

        assert urlsplit(settings.nats_url or "").hostname == "nats"
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
