"""Resolved slot values in answers: each slot's typed value from its model's slot types,
against the request's clock (``reference_time``, ``timezone``; checked with the body, so a bad
one is a 422 before any model runs), and the Rasa form of those values."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from app.config import Settings
from app.errors import APIError
from app.serving.registry import LoadedModel, ModelRegistry
from app.serving.results import ParseResult
from models.artifact import load_manifest
from models.errors import ArtifactError
from models.store import version_dir
from models.values import Reference, make_reference
from models.values.engine import warm_up
from models.values.slots import SlotValueResolver


class InvalidReference(APIError):
    status_code, code = 422, "invalid_reference"


class ClockRequest(Protocol):
    """A request body with the clock fields (``schemas.ClockFields``)."""

    @property
    def reference_time(self) -> Any: ...
    @property
    def timezone(self) -> str | None: ...


def request_reference(body: ClockRequest, settings: Settings) -> Reference:
    """The reference the request names: its time (now if absent) in its zone
    (``SLOTFILL_DEFAULT_TIMEZONE`` if absent)."""
    try:
        return make_reference(body.reference_time, body.timezone or settings.default_timezone)
    except ValueError as err:
        raise InvalidReference(str(err)) from None


_RESOLVERS: dict[str, SlotValueResolver] = {}
_KEEP = 64  # model versions whose resolvers stay cached (an artifact never changes)


def _cache(ref: str, make: Any) -> SlotValueResolver:
    resolver = _RESOLVERS.get(ref)
    if resolver is None:
        if len(_RESOLVERS) >= _KEEP:
            _RESOLVERS.pop(next(iter(_RESOLVERS)), None)
        resolver = _RESOLVERS[ref] = make()
    return resolver


def model_resolver(model: LoadedModel) -> SlotValueResolver:
    """The resolver of a loaded tagger's slot types."""
    types = model.artifact.manifest.slot_types
    return _cache(model.ref, lambda: SlotValueResolver.from_manifest({"slot_types": types}))


def _resolver_of(registry: ModelRegistry, name: str, version: str) -> SlotValueResolver:
    """The resolver of the exact version that answered (it may have been swapped out since:
    then its manifest is read from the store)."""
    served = registry.all().get(name)
    if served is not None and served.version == version:
        return model_resolver(served)

    def from_store() -> SlotValueResolver:
        try:
            manifest = load_manifest(version_dir(registry.store, name, version))
        except ArtifactError:
            return SlotValueResolver({})
        return SlotValueResolver.from_manifest({"slot_types": manifest.slot_types})

    return _cache(f"{name}@{version}", from_store)


def slot_types(model: LoadedModel) -> dict[str, str]:
    """Slot -> value type of a tagger, as ``GET /v1/models`` lists them."""
    return model_resolver(model).types() if model.artifact.task == "slots" else {}


def with_values(
    results: list[ParseResult], registry: ModelRegistry, body: ClockRequest, settings: Settings
) -> list[ParseResult]:
    """``results`` with each slot's resolved value (None where it cannot be resolved)."""
    if not results:
        return results
    reference = request_reference(body, settings)
    model = results[0].model
    resolver = _resolver_of(registry, model.name, model.version)
    return [
        replace(r, values=resolver.resolve_all([(s.slot, s.value) for s in r.slots], reference))
        for r in results
    ]


def with_rasa_values(answer: dict[str, Any], result: ParseResult) -> dict[str, Any]:
    """Rasa's answer with each resolved entity's ``value`` the resolved value and its typed
    form in ``additional_info``, as Rasa's Duckling extractor gives them."""
    for entity, value in zip(answer["entities"], result.slot_values(), strict=True):
        if value is not None:
            entity["value"] = value.scalar()
            entity["additional_info"] = value.to_json()
    return answer


def warm_values() -> None:
    """Load Duckling and its time-zone database and run one parse (about half a second)."""
    warm_up()
