"""Moving a served alias back, as the person who asks: the registry with a person's own login.

The platform's services hold MLflow accounts of their own (:mod:`fsdl_lib.tracking` uses them). A
rollback is a person's decision, so MLflow itself must decide whether that person may move the alias,
as in its own UI: :class:`PersonalRegistry` speaks MLflow's REST API with that person's login, for one
request, and keeps it nowhere else. :func:`roll_back` is the move: the alias must still point where the
person saw it, the version gets its record first (tags, like the guarded promotion's), then the alias
moves; a move that fails takes its record back.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any, Final

import requests

from fsdl_lib.exceptions import RegistryRefusedError
from fsdl_lib.tracking import TAG_PROMOTION_DECISION

log = logging.getLogger(__name__)

TIMEOUT: Final = 20.0


class PersonalRegistry:
    """MLflow's model registry (REST API) with one person's login."""

    def __init__(self, tracking_uri: str, user: str, password: str, *, timeout: float = TIMEOUT) -> None:
        self.api = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow"
        # UTF-8, as MLflow reads it (requests would encode Latin-1 only and fail on other names).
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self.user = user
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = requests.request(
                method, f"{self.api}/{path}", headers=self._headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            log.error("MLflow at %s is unreachable: %s", self.api, exc)
            raise RegistryRefusedError("unreachable", "the model registry cannot be reached; try again later") from None
        if response.status_code == 401:
            raise RegistryRefusedError("login", "MLflow refused this login")
        if response.status_code == 403:
            raise RegistryRefusedError(
                "forbidden",
                f"MLflow user {self.user!r} may not move aliases of this model (an MLflow admin can grant it)",
            )
        if not response.ok:
            log.error("MLflow answered %s to %s %s: %s", response.status_code, method, path, response.text[:500])
            raise RegistryRefusedError("failed", "the model registry could not do it (the server log has the details)")
        return dict(response.json() or {})

    def alias_version(self, name: str, alias: str) -> str:
        """The version ``alias`` points to, or "" when it points nowhere."""
        found = self._call("GET", "registered-models/alias", params={"name": name, "alias": alias})
        return str(found.get("model_version", {}).get("version", ""))

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._call("POST", "model-versions/set-tag", json=body)

    def delete_version_tag(self, name: str, version: str, key: str) -> None:
        self._call("DELETE", "model-versions/delete-tag", json={"name": name, "version": version, "key": key})

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": version})


def roll_back(
    registry: PersonalRegistry, name: str, alias: str, *, from_version: str, to_version: str, where: str
) -> dict[str, str]:
    """Move ``alias`` of ``name`` from ``from_version`` back to ``to_version`` as ``registry``'s person;
    ``where`` says where they asked (recorded). Returns the tags recorded on ``to_version``."""
    now = registry.alias_version(name, alias)
    if now != from_version:
        raise RegistryRefusedError(
            "conflict", f"@{alias} is version {now or 'none'} now, not {from_version}; reload the page"
        )
    tags = {
        TAG_PROMOTION_DECISION: f"rolled back from version {from_version} by {registry.user} {where}",
        "rolled_back_from": from_version,
        "rolled_back_by": registry.user,
        "rolled_back_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # The record first, then the move; a move that fails takes its record back (nothing half-done).
    for key, value in tags.items():
        registry.set_version_tag(name, to_version, key, value)
    try:
        registry.set_alias(name, alias, to_version)
    except RegistryRefusedError:
        for key in tags:
            try:
                registry.delete_version_tag(name, to_version, key)
            except RegistryRefusedError:
                log.error("tag %s of version %s could not be removed after the failed move", key, to_version)
        raise
    return tags
