"""HTTP shapes derived from the contract's payload models, so there is no second copy of a schema.

A route whose id comes from the path takes the payload minus `id`; a list route whose payload
has a field a query string cannot carry takes a replacement for that one field. Every other
field, with its type, constraints, default and description, is the contract's own, and the
service validates the payload it receives again, strictly.
"""

from typing import Any

from pydantic import BaseModel, create_model


def derived(model: type[BaseModel], name: str, *, drop: tuple[str, ...] = (), **replace: Any) -> type[BaseModel]:
    """`model`'s fields but `drop`, with `replace`'s (annotation, FieldInfo) instead of the ones of the same name."""
    fields: dict[str, Any] = {
        field_name: replace.pop(field_name, (info.annotation, info))
        for field_name, info in model.model_fields.items() if field_name not in drop
    }
    return create_model(name, __config__=model.model_config, __doc__=model.__doc__, **fields, **replace)
