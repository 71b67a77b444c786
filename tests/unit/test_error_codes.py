"""Error codes are stable and unique: two unrelated error classes must never share a code.

The registry keeps the first class registered for a code (shared/kernel/errors.py), so a second,
unrelated class with the same code would come back across the bus as the first one — a different
family, a different HTTP status. Only refinements of the registered class (subclasses that keep its code) may share it.
"""

import importlib
import pkgutil
from collections import defaultdict

import services
import shared.contracts
from shared.kernel.errors import OneError


def _import_all(package) -> None:
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if ".migrations." not in module.name and not module.name.endswith(".migrations"):
            importlib.import_module(module.name)


def _subclasses(cls: type[OneError]) -> set[type[OneError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_no_two_unrelated_error_classes_share_a_code() -> None:
    _import_all(shared.contracts)
    _import_all(services)
    by_code: dict[str, list[type[OneError]]] = defaultdict(list)
    for cls in _subclasses(OneError):
        by_code[cls.code].append(cls)
    clashes = {  # the class a reply is rebuilt as must be an ancestor of every class raised with that code
        code: sorted(f"{c.__module__}.{c.__qualname__}" for c in classes)
        for code, classes in by_code.items()
        if not all(issubclass(c, OneError._by_code[code]) for c in classes)
    }
    assert not clashes, f"error codes shared by unrelated classes: {clashes}"
