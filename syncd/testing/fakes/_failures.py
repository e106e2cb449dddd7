"""The failures a test can inject into a fake app or a connector's transport, named once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``"429"``: the app's rate-limit answer; ``"500"``: a server error; ``"timeout"``: no answer in
#: time (a fake server stalls, a transport raises a timeout at once).
FailureKind = Literal["429", "500", "timeout"]


@dataclass
class Failure:
    """A failure to inject into the next ``times`` matching requests (path prefix, any method)."""

    kind: FailureKind
    times: int = 1
    path_prefix: str = ""
    #: For "timeout": how long the handler stalls before answering (clients should time out first).
    stall_seconds: float = 30.0
