"""The wire formats the proxy reads: one adapter per API (`chat.py`, `messages.py`,
`responses.py`) behind one interface (`base.py`), looked up by path (`registry.py`), and
the reader of their answers (`answer.py`). Memory and accounting ask an adapter what
differs between the APIs; nothing else tells them apart."""
