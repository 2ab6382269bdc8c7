"""Settings and line-aware YAML loading, shared by the policy loader and the worker's settings."""
