"""The README's curl examples answer exactly as shown, through the real stack."""

from __future__ import annotations

import re
import subprocess

from deploy.procs import ROOT

EXAMPLE = re.compile(r"```sh\n(curl [^\n]+)\n```\n```json\n([^\n]+)\n```")


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((ROOT / "README.md").read_text())


def test_the_readme_has_curl_examples_for_health_models_iris_sentiment_and_errors():
    commands = " ".join(command for command, _ in examples())
    for route in ("/healthz", "/v1/models", "iris/predict", "sentiment/predict"):
        assert route in commands


def test_every_readme_curl_example_answers_exactly_as_shown(stack):
    port = stack.nginx_url.rsplit(":", 1)[1]
    for command, expected in examples():
        command = command.replace("localhost:8080", f"127.0.0.1:{port}")
        output = subprocess.run(command, shell=True, capture_output=True, text=True,
                                timeout=30, check=True).stdout
        assert output.strip() == expected, command
