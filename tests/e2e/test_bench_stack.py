"""The benchmark's stack launcher: it starts the stack as `make up` does, on free ports."""

from __future__ import annotations

import socket

import pytest

from bench import systems
from deploy.procs import http_ok

pytestmark = pytest.mark.slow


def test_a_port_taken_between_choosing_and_binding_it_means_another_start(tmp_path,
                                                                          monkeypatch):
    choose = systems._stack_env
    chosen: list[dict[str, str]] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        def first_choice_taken(settings):
            env = choose(settings)
            if not chosen:  # someone else binds NGINX's port before the stack does
                env["INFER_NGINX_PORT"] = str(taken.getsockname()[1])
            chosen.append(env)
            return env

        monkeypatch.setattr(systems, "_stack_env", first_choice_taken)
        with systems.stack(tmp_path) as stack:
            assert len(chosen) == 2
            assert stack.url == f"http://127.0.0.1:{chosen[1]['INFER_NGINX_PORT']}"
            assert http_ok(f"{stack.url}/healthz")
