"""The `memory-proxy` command: serving the proxy (main), reading usage and memories offline."""
