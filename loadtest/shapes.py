"""The load shape Locust runs, chosen by name with ``--load-shape steady|step|spike|soak``.

Locust runs the first ``LoadTestShape`` it finds in a locustfile, so there is one
shape class and it looks up a profile from ``loadtest/profiles.py`` by name.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.profiles import Step, wanted


class NamedShape(LoadTestShape):
    """Runs the profile named by ``--load-shape``, scaled by ``-u``, ``-r`` and ``-t``."""

    use_common_options = True

    def tick(self) -> Step:
        return wanted(self.runner.environment.parsed_options, self.get_run_time())
