"""The agents service's own settings: model providers, the tool loop's limits, jobs (same `ONE_` prefix)."""

from typing import Literal

from pydantic import Field, SecretStr

from shared.kernel.settings import Settings


class AgentsSettings(Settings):
    agents_default_provider: Literal["openai", "anthropic", "offline"] = Field(
        "offline", description="The provider of an agent model named without a `<provider>:` prefix."
    )
    agents_default_model: str = Field(
        "offline:smollm2-135m-instruct", description="The model of an agent created without one."
    )
    agents_max_iterations: int = Field(10, ge=1, le=10, description="Tool-loop iterations per run (an agent may set fewer).")
    # OpenAI-compatible Chat Completions (OpenAI, vLLM, Ollama, llama.cpp server, any proxy)
    agents_openai_base_url: str = "https://api.openai.com/v1"
    agents_openai_api_key: SecretStr | None = None
    agents_openai_timeout: float = Field(60.0, gt=0)
    # Anthropic Messages API
    agents_anthropic_base_url: str | None = None
    agents_anthropic_api_key: SecretStr | None = None
    agents_anthropic_timeout: float = Field(60.0, gt=0)
