"""The remote side of the `meshgate` command: log in to a gateway, call its tools, bridge MCP over stdio.

Nothing here is imported by `meshgate serve`; `meshgate.cli` loads these commands only when one is run.
"""
