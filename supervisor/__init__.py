"""start-proxies: LiteLLM as a supervised child next to the memory proxy."""
