"""Adapters shipped with the runner. Each holds user functions only."""
