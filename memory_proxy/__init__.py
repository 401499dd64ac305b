"""litellm-memory-proxy: one local, memory-aware endpoint for every AI client."""
