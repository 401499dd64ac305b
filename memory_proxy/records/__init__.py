"""The shapes every layer shares: chat messages, usage records, memories and usage series.
They import nothing else of ours, so anything may import them."""
