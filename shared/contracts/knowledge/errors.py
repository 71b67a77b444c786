"""The knowledge service's errors: refinements of the shared families, so callers can catch either."""

from shared.kernel.errors import Conflict, Internal, InvalidRequest, NotFound, Unavailable


class KnowledgeError(Exception):
    """Marker root: every error raised by the knowledge service's own rules."""


class KnowledgeNotFound(KnowledgeError, NotFound):
    code = "knowledge_not_found"


class ThingNotFound(KnowledgeError, NotFound):
    """The thing to label, link or ingest is not a live thing of the caller's org (asked of the graph)."""

    code = "thing_not_found"


class InvalidLabel(KnowledgeError, InvalidRequest):
    """A label name that breaks the hygiene rules (characters, length, unknown curated prefix)."""

    code = "invalid_label"


class LabelConflict(KnowledgeError, Conflict):
    """The name or alias already belongs to another label of the org."""

    code = "label_conflict"


class LabelInUse(KnowledgeError, Conflict):
    """A label still applied to things or items is deprecated, not deleted."""

    code = "label_in_use"


class LabelDeprecated(KnowledgeError, Conflict):
    """A deprecated label keeps its references but is not applied again."""

    code = "label_deprecated"


class ModelMismatch(KnowledgeError, InvalidRequest):
    """A vector of another model or dimension than the one it is compared with or stored for."""

    code = "embedding_model_mismatch"


class EmbeddingError(Exception):
    """Marker root: every error an embedder raises (a search or an embed request answers with them)."""


class EmptyText(EmbeddingError, InvalidRequest):
    """A text to embed is empty or only whitespace."""

    code = "empty_text"


class EmbeddingUnavailable(EmbeddingError, Unavailable):
    """The embedding model or endpoint is down or overloaded; worth retrying later."""

    code = "embedding_unavailable"


class EmbeddingRejected(EmbeddingError, Internal):
    """The endpoint refused the request (bad key, unknown model, ...): retrying won't help until config changes."""

    code = "embedding_rejected"


class EmbeddingMalformed(EmbeddingError, Internal):
    """The endpoint answered with something that isn't one vector of the expected size per text."""

    code = "embedding_malformed"
