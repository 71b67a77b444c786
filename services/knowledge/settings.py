"""Knowledge's own settings: the embedder, chunking, search tuning and ingestion (same `ONE_` names as ever)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from shared.kernel.settings import Settings


class KnowledgeSettings(Settings):
    knowledge_embedder: Literal["local", "openai", "hashing"] = Field(
        "local",
        description="`local`: all-MiniLM-L6-v2 on the CPU (the `model` extra); `openai`: an OpenAI-compatible "
        "HTTP endpoint (`knowledge_openai_*`); `hashing`: deterministic feature hashing, for fast tests only.",
    )
    knowledge_openai_base_url: str = "https://api.openai.com/v1"
    knowledge_openai_api_key: SecretStr | None = None
    knowledge_openai_model: str = "text-embedding-3-small"
    knowledge_openai_dim: int | None = Field(None, ge=1, description="Asked of the endpoint (`dimensions`); unset = the model's own.")
    knowledge_openai_timeout: float = Field(30.0, gt=0)
    knowledge_embed_batch: int = Field(32, ge=1, le=2048, description="Texts per embedding call.")
    knowledge_embed_threads: int = Field(0, ge=0, description="torch CPU threads for the local model; 0 = torch's default.")
    knowledge_tokenizer: Path | None = Field(None, description="A tokenizer.json for chunk token counts; unset = the local model's.")
    knowledge_chunk_tokens: int = Field(800, ge=16, description="Target chunk window, in tokens.")
    knowledge_chunk_overlap: int = Field(200, ge=0, description="Tokens a chunk repeats from the previous one.")
    knowledge_ef_search: int = Field(
        200, ge=1, le=1000, description="hnsw.ef_search of a k-NN query: recall vs speed (100k clustered vectors: 100 gives ~94% recall@10, 200 ~96%)."
    )
    knowledge_exact_below: int = Field(
        5000, ge=0, description="An org with fewer matching vectors than this is searched exactly (no index)."
    )
    knowledge_rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant of hybrid search.")
    knowledge_weight_semantic: float = Field(1.0, ge=0)
    knowledge_weight_lexical: float = Field(1.0, ge=0)
    knowledge_weight_labels: float = Field(0.5, ge=0)
    knowledge_auto_ingest: bool = Field(True, description="Ingest things when the graph reports them created or changed.")
    knowledge_debounce_ms: int = Field(2000, ge=0, description="Quiet time after a thing's last change before it is (re)ingested.")
    knowledge_ingest_workers: int = Field(2, ge=1, description="Ingestion jobs run at once per replica.")
    knowledge_ingest_max_attempts: int = Field(5, ge=1)
    knowledge_archive_retention_days: float = Field(30.0, ge=0, description="Archived chunks older than this are purged by GC.")
    knowledge_trigger_ack_wait: float = Field(30.0, gt=0, description="Seconds JetStream waits for the ingestion trigger's ack before redelivering.")
    knowledge_trigger_max_deliver: int = Field(10, ge=1, description="Deliveries of a graph event before the trigger dead-letters it.")
    knowledge_trigger_retry_delay: float = Field(2.0, ge=0, description="First NAK delay of a batch the trigger could not queue; doubles per delivery.")
    knowledge_trigger_retry_delay_max: float = Field(30.0, ge=0, description="Longest NAK delay of the trigger.")
