"""Where conversations, usage and long-term memories live: in memory, in one SQLite file
(the default), in PostgreSQL (one memory for several proxies) or in Redis (shared sessions
and usage). open.py opens the configured one.

Nothing is imported here: every module of the package runs this file first, and the index
process (memory/index_worker.py) imports the SQLite index alone, not every store and the
config package beside it.
"""
