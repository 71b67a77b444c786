"""Settings per service: the kernel keeps the common fields, each service reads its own `ONE_*` names."""

import pytest
from pydantic import SecretStr, ValidationError

from services.agents.settings import AgentsSettings
from services.commerce.settings import CommerceSettings
from services.eventlog.settings import EventlogSettings
from services.gateway.settings import GatewaySettings
from services.graph.settings import GraphSettings
from services.knowledge.settings import KnowledgeSettings
from services.tenancy.settings import TenancySettings
from shared.kernel import subjects
from shared.kernel.settings import Settings
from shared.tools.stack import load_service


def test_the_kernel_settings_refuse_a_field_that_moved_to_a_service() -> None:
    with pytest.raises(ValidationError, match="knowledge_embedder"):
        Settings(knowledge_embedder="hashing")


def test_a_services_variable_in_the_environment_does_not_trouble_the_kernel_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONE_KNOWLEDGE_EMBEDDER", "hashing")
    monkeypatch.setenv("ONE_NO_SUCH_SETTING", "1")
    monkeypatch.setenv("ONE_REQUEST_TIMEOUT", "7")
    settings = Settings()
    assert settings.request_timeout == 7.0 and "knowledge_embedder" not in settings.model_dump()


def test_each_service_reads_its_own_variables_under_the_same_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONE_KNOWLEDGE_EMBEDDER", "hashing")
    monkeypatch.setenv("ONE_GRAPH_MAX_DEPTH", "3")
    monkeypatch.setenv("ONE_SMTP_PORT", "465")
    monkeypatch.setenv("ONE_EVENTLOG_BATCH_SIZE", "50")
    assert KnowledgeSettings().knowledge_embedder == "hashing"
    assert GraphSettings().graph_max_depth == 3
    assert TenancySettings().smtp_port == 465
    assert EventlogSettings().eventlog_batch_size == 50


def test_a_services_setting_keeps_its_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONE_GRAPH_MAX_DEPTH", "0")
    with pytest.raises(ValidationError, match="graph_max_depth"):
        GraphSettings()


def test_from_common_keeps_the_common_values_given_and_reads_the_services_own_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONE_KNOWLEDGE_DEBOUNCE_MS", "123")
    monkeypatch.setenv("ONE_REQUEST_TIMEOUT", "99")  # what the runtime was given wins
    given = Settings(
        nats_url="nats://bus:4222", database_url="postgresql://db/one", request_timeout=3.0,
        otel_endpoint="http://collector:4318", db_app_password=SecretStr("pw"),
    )
    own = KnowledgeSettings.from_common(given)
    assert isinstance(own, KnowledgeSettings) and own.knowledge_debounce_ms == 123
    assert own.model_dump(include=set(Settings.model_fields)) == given.model_dump()
    assert own.otel_endpoint == "http://collector:4318"  # a field read from an env alias passes by its own name


def test_from_common_uses_the_services_own_settings_as_they_are() -> None:
    tuned = KnowledgeSettings(knowledge_debounce_ms=300)
    assert KnowledgeSettings.from_common(tuned) is tuned


def test_from_common_takes_only_the_common_fields_of_another_services_settings() -> None:
    graph = GraphSettings.from_common(TenancySettings(smtp_host="mail.example", request_timeout=3.0))
    assert graph.request_timeout == 3.0 and "smtp_host" not in graph.model_dump()


def test_each_service_definition_names_its_settings_class() -> None:
    classes = {name: load_service(name).settings for name in subjects.SERVICES}
    assert classes == {
        "tenancy": TenancySettings, "graph": GraphSettings, "eventlog": EventlogSettings,
        "knowledge": KnowledgeSettings, "agents": AgentsSettings, "commerce": CommerceSettings,
        "gateway": GatewaySettings,
    }
