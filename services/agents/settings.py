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
    agents_anthropic_max_retries: int = Field(2, ge=0, le=10, description="Client retries on connection errors, 429 and 5xx.")
    # The offline model (SmolLM2-135M-Instruct on the CPU, the embedded default)
    agents_offline_threads: int = Field(0, ge=0, description="CPU threads for the offline model (0: torch's default).")
    # runs: context, durability, money
    agents_history_messages: int = Field(20, ge=0, le=200, description="Recent conversation messages put in a run's context.")
    agents_lease_seconds: float = Field(15.0, gt=0, description="A run's lease: renewed while a replica works on it.")
    agents_sweep_interval: float = Field(5.0, gt=0, description="How often a replica looks for runs whose lease expired.")
    agents_max_takeovers: int = Field(2, ge=0, description="Takeovers after which an orphaned run fails instead of resuming.")
    agents_inference_quota: str | None = Field(
        "inference", description="Tenancy quota metric one model call counts against; an org without it is unlimited."
    )
    agents_model_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="USD per million (input, output) tokens, by `<provider>:<model>`; unlisted = 0."
    )
    agents_tool_result_chars: int = Field(8000, ge=100, description="A tool result is cut to this many characters for the model.")
    agents_x402_fetch_private: bool = Field(
        False, description="Let the `x402_fetch` tool reach loopback, private and link-local addresses. Off: the model "
        "picks the URL, and the answer goes back to it (other services, cloud metadata must stay out of reach).",
    )
    sealing_keks: SecretStr | None = Field(
        None, description="Key-encryption keys of the secrets sealed at rest (docs/sealing.md), as JSON "
        '`{"current": id, "keys": {id: base64 of 32 bytes}}`. Unset = `<data_dir>/keys/agents.keks.json`.',
    )
    agents_embed_messages: bool = Field(True, description="Embed conversation messages through the knowledge service.")
    agents_a2a_caller_tally_seconds: float = Field(
        0.5, ge=0, description="How long the count of an A2A caller's messages (its `communicated` connection) "
        "gathers messages before it is written: one graph write per caller and agent per period, not per message.",
    )
    # durable jobs (worker.py)
    agents_jobs_slots: int = Field(4, ge=0, le=256, description="Jobs one replica runs at once (0: it runs none).")
    agents_jobs_queues: list[str] = Field(["default"], min_length=1, description="The job queues this replica serves.")
    agents_jobs_lease: float = Field(30.0, ge=1.0, description="Seconds a worker holds a job unless it renews (heartbeat).")
    agents_jobs_backoff_base: float = Field(2.0, gt=0, description="Retry delay after a first failure; doubles each time.")
    agents_jobs_backoff_max: float = Field(3600.0, gt=0, le=3600, description="The retry delay's cap (jittered below it).")
    agents_jobs_poll_max: float = Field(5.0, gt=0, description="Longest wait for due jobs without a NOTIFY.")
    agents_jobs_stop_grace: float = Field(10.0, ge=0, description="On stop, seconds running jobs get before release.")
