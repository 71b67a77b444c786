"""Tenancy service: organizations, people, memberships, roles and policies, API keys, quotas, rate limits."""
