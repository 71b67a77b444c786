"""The tools reach into a service by its name at run time, through one loader (shared/ imports no service)."""

import pytest

from shared.tools.stack import load_service, service_module


def test_a_service_module_is_loaded_by_service_and_module_name() -> None:
    mailer = service_module("tenancy", "mailer")
    assert mailer.__name__ == "services.tenancy.mailer" and callable(mailer.deliver_until_signalled)
    assert load_service("tenancy") is service_module("tenancy", "app").definition


def test_an_unknown_service_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown service 'billing'"):
        service_module("billing", "app")
