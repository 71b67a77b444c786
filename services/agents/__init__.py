"""Agents service: agent configs, threads, runs and tools, jobs, external agents, plugins."""
