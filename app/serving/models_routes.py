"""``GET /v1/models``: what is served, with versions and valid metrics."""

from __future__ import annotations

from fastapi import APIRouter

from app import paths
from app.deps import RegistryDep
from app.serving.schemas import ModelInfo, ModelsResponse
from app.serving.values import slot_types

router = APIRouter(tags=["models"])


@router.get(paths.MODELS, response_model=ModelsResponse)
def list_models(registry: RegistryDep) -> ModelsResponse:
    """Loaded models, their versions and the valid metrics from their manifests."""
    infos = []
    for model in registry.all().values():
        manifest = model.artifact.manifest
        infos.append(
            ModelInfo(
                name=model.name,
                version=model.version,
                task=model.artifact.task,
                default=model.name == registry.default,
                slot_types=slot_types(model),
                created_at=manifest.created_at,
                metrics=manifest.metrics,
                labels={k: len(v) for k, v in manifest.labels.items()},
                intents=list(manifest.labels.get("intents", [])),
                slots=sorted({t[2:] for t in manifest.labels.get("tags", []) if t != "O"}),
                sentiments=list(manifest.labels.get("sentiment", [])),
            )
        )
    return ModelsResponse(models=sorted(infos, key=lambda m: m.name))
