"""The Graph-compatible admin API: same paths under /v1.0 and /beta, same JSON, same errors."""
