"""A client (the CLI, the SDK) reads its few settings without pydantic-settings (`ClientSettings`, for a fast
`one whoami`): from the same environment variables, with the same values, as the services' `Settings`."""

from pathlib import Path

import pytest

from shared.kernel.settings import Settings
from shared.tools.sdk.connect import _ENVIRONMENT, ClientSettings, with_running_stack

ENVIRONMENTS = [
    {},
    {"ONE_NATS_URL": "nats://one:4222", "NATS_URL": "nats://plain:4222"},
    {"NATS_URL": "nats://plain:4222", "ONE_DATA_DIR": "/tmp/somewhere", "ONE_REQUEST_TIMEOUT": "2.5"},
    {"ONE_NATS_USER": "cli", "ONE_NATS_PASSWORD": "s3cret", "ONE_REQUEST_TIMEOUT": "7"},
    {"one_nats_url": "nats://lower:4222", "one_request_timeout": "3"},  # Settings ignores the case of names
]


def _client_fields(settings: Settings | ClientSettings) -> dict[str, object]:
    values = {field: getattr(settings, field) for field in _ENVIRONMENT}
    password = values["nats_password"]
    values["nats_password"] = password.get_secret_value() if password is not None else None
    return values


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for field in Settings.model_fields.values():
        for name in [*getattr(field.validation_alias, "choices", ())]:
            monkeypatch.delenv(name, raising=False)
    for names in _ENVIRONMENT.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=lambda e: ",".join(e) or "empty")
def test_client_settings_read_what_settings_read(bare_env: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for name, value in environment.items():
        bare_env.setenv(name, value)
    assert _client_fields(ClientSettings.from_environment()) == _client_fields(Settings())


def test_every_client_field_is_a_settings_field_with_its_default() -> None:
    for field in _ENVIRONMENT:
        assert field in Settings.model_fields, field
        assert getattr(ClientSettings(), field) == Settings.model_fields[field].default, field


def test_a_bad_value_is_refused_as_settings_refuse_it(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("ONE_REQUEST_TIMEOUT", "soon")
    with pytest.raises(Exception) as refused:
        ClientSettings.from_environment()
    assert type(refused.value).__name__ == "ValidationError" and "request_timeout" in str(refused.value)


def test_the_running_stack_fills_only_what_is_unset(tmp_path: Path) -> None:
    (tmp_path / "runtime.json").write_text('{"nats_url": "nats://running:4222", "database_url": "postgresql://db"}')
    found = with_running_stack(ClientSettings(data_dir=tmp_path))
    assert (found.nats_url, found.database_url) == ("nats://running:4222", "postgresql://db")
    given = with_running_stack(ClientSettings(data_dir=tmp_path, nats_url="nats://given:4222"))
    assert given.nats_url == "nats://given:4222"
    assert with_running_stack(Settings(data_dir=tmp_path)).nats_url == "nats://running:4222"  # and for Settings


def test_the_tracing_module_samples_roots_on_the_sdks_bits() -> None:
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    from shared.runtime import tracing

    assert tracing._TRACE_ID_LIMIT == TraceIdRatioBased.TRACE_ID_LIMIT
