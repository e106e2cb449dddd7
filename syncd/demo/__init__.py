"""``syncd demo``: the daemon against bundled fake apps, for a newcomer's first ten minutes.

Modules by role: ``dataset`` (the seeded customers), ``apps`` (the HubSpot and Mailchimp fakes),
``workspace`` (config, mapping, secrets and state on disk), ``progress`` (the live first-sync
table), ``session`` (the steps), ``guide`` (where to look), ``feed`` (changes as they happen),
``run`` (the command's flow) and ``cli`` (the click command). ``docs_gen`` generates
``docs/mapping-reference.md``. The example mapping ships here as ``contacts.toml``, so the demo
works from an installed package.

``run_demo`` is imported on first use: registering ``demo_command`` on the CLI must not load the
daemon and the fakes for every other command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import run_demo

__all__ = ["run_demo"]


def __getattr__(name: str) -> Any:
    if name == "run_demo":
        from .run import run_demo

        return run_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
