"""Model providers by name: an agent's `model` is `<provider>:<model>` (e.g. `openai:gpt-4o-mini`,
`anthropic:claude-sonnet-4-5`, `offline:smollm2-135m-instruct`).

Each provider lives in its own module, imported only when an agent first uses it, so a replica
that never runs the offline model never imports torch. A module exposes `create(settings) -> ModelProvider`.
"""

import importlib

from services.agents.providers.base import ModelProvider
from services.agents.settings import AgentsSettings
from shared.kernel.errors import InvalidRequest

MODULES = {
    "openai": "services.agents.providers.openai_compat",
    "anthropic": "services.agents.providers.anthropic",
    "offline": "services.agents.providers.offline",
}


def split_model(ref: str, default_provider: str) -> tuple[str, str]:
    """`openai:gpt-4o-mini` -> ("openai", "gpt-4o-mini"); a bare name belongs to the default provider."""
    provider, sep, model = ref.partition(":")
    if not sep:
        provider, model = default_provider, ref
    if provider not in MODULES or not model:
        raise InvalidRequest(f"unknown model {ref!r}: expected <provider>:<model>", details={"providers": sorted(MODULES)})
    return provider, model


class Providers:
    """One instance per provider and replica (kept in the service's state), created on first use."""

    def __init__(self, settings: AgentsSettings) -> None:
        self.settings = settings
        self._made: dict[str, ModelProvider] = {}

    def resolve(self, ref: str) -> tuple[ModelProvider, str]:
        """The provider for `ref` and the model name to ask it for."""
        provider, model = split_model(ref, self.settings.agents_default_provider)
        if provider not in self._made:
            self._made[provider] = importlib.import_module(MODULES[provider]).create(self.settings)
        return self._made[provider], model
