"""The local stack: settings, rendering from `deploy/` templates, and the honcho runner.

`python -m deploy.stack up` is what `make up` runs; `render-nginx` renders the one
NGINX template for compose and Kubernetes.
"""

from deploy.stack.config import ServiceLimits, StackConfig
from deploy.stack.render import RunDir, render_nginx, render_prometheus, render_stack

__all__ = [
    "RunDir",
    "ServiceLimits",
    "StackConfig",
    "render_nginx",
    "render_prometheus",
    "render_stack",
]
