"""Liveness: the one route that belongs to no domain."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.schemas import errors

router = APIRouter(prefix="/v1", responses=errors(400, 422))


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness for load balancers and the demo's start-up wait."""
    return {"status": "ok"}
