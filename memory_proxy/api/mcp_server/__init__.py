"""Long-term memory as an MCP server at `/mcp`: agents search, remember, list and forget
memories, and see recent sessions, on purpose, in the same memory recall uses.

endpoint.py (the gate, the SDK's streamable HTTP) · server.py (the MCP server: a call,
end to end) · tools.py (the tools as the model reads them) · memory_tools.py (what they
do) · workspace.py (which project).
"""
