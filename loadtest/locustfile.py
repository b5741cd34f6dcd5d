"""The entry point Locust loads: ``locust -f loadtest/locustfile.py``.

Locust runs every user class and the (single) shape class found in this module's
namespace; the imports below are what puts them here.
"""

from locust import events

from loadtest import gates, profiles, slo
from loadtest.shapes import NamedShape
from loadtest.users import (
    BadInputUser,
    IrisColdUser,
    IrisHotUser,
    SentimentColdUser,
    SentimentHotUser,
)

__all__ = [
    "BadInputUser",
    "IrisColdUser",
    "IrisHotUser",
    "NamedShape",
    "SentimentColdUser",
    "SentimentHotUser",
]


@events.init_command_line_parser.add_listener
def _add_arguments(parser, **_kwargs) -> None:
    profiles.add_arguments(parser)
    slo.add_arguments(parser)


events.quitting.add_listener(gates.on_quitting)
