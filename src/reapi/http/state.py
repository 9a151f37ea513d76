"""The services a request handler may call, built once by ``create_app``'s lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from starlette.requests import Request

from reapi.config import Config
from reapi.observability.access import AccessLog
from reapi.observability.metrics import Metrics
from reapi.observability.readiness import Readiness
from reapi.providers.llamacpp.channels import LocalServers
from reapi.services.billing import BillingService
from reapi.services.chat import ChatService
from reapi.services.keys import KeyService
from reapi.settings import Settings


@dataclass(slots=True)
class Gateway:
    settings: Settings
    config: Config
    keys: KeyService
    chat: ChatService
    billing: BillingService
    metrics: Metrics
    access: AccessLog
    local: LocalServers
    readiness: Readiness


def state_of(request: Request) -> Gateway:
    return cast(Gateway, request.app.state.gateway)
