"""Reading a `/metrics` page in tests: requests answered, by (service, type, outcome)."""

from prometheus_client.parser import text_string_to_metric_families


def request_counts(page: str) -> dict[tuple[str, str, str], float]:
    """`one_request_duration_seconds_count` of each (service, type, outcome) on the page."""
    return {
        (s.labels["service"], s.labels["type"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(page) if family.name == "one_request_duration_seconds"
        for s in family.samples if s.name.endswith("_count")
    }
