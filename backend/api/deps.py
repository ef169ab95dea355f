"""Request dependencies: the per-request session (committed at the boundary) and the caller."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from sqlalchemy.orm import Session, sessionmaker

from backend import models
from backend.api import policy
from backend.api.schemas import PassengerId
from backend.operators import repository as operators_repo
from backend.passengers import repository as passengers_repo
from backend.security import token_hash

_bearer = HTTPBearer(auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(what: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=f"{what} token required as 'Authorization: Bearer <token>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def current_operator(
    request: Request, session: SessionDep, credentials: Credentials
) -> models.Operator:
    """The operator of the bearer token, if the route's role in ``backend/api/policy.py``
    allows them: 401 without a valid token, 403 for a lower role."""
    if credentials is None:
        raise _unauthorized("an operator")
    operator = operators_repo.operator_by_token(session, token_hash(credentials.credentials))
    if operator is None:
        raise _unauthorized("a valid operator")
    needed = policy.required_role(request)
    if not policy.allows(operator.role, needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"needs the {needed!r} role; operator {operator.name!r} is {operator.role!r}",
        )
    return operator


def current_passenger(session: SessionDep, credentials: Credentials) -> models.Passenger:
    if credentials is None:
        raise _unauthorized("a passenger")
    passenger = passengers_repo.passenger_by_token(session, token_hash(credentials.credentials))
    if passenger is None:
        raise _unauthorized("a valid passenger")
    return passenger


CurrentOperator = Annotated[models.Operator, Depends(current_operator)]
"""An operator allowed on this route; the role each route needs is in ``policy.py``."""
CurrentPassenger = Annotated[models.Passenger, Depends(current_passenger)]


def own_passenger(passenger_id: PassengerId, me: CurrentPassenger) -> models.Passenger:
    """The passenger named in the path, if it is the caller; otherwise 404 (not 403, so
    passenger ids cannot be probed)."""
    if me.passenger_id != passenger_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="passenger not found")
    return me


OwnPassenger = Annotated[models.Passenger, Depends(own_passenger)]


def _iso_date_only(value: object) -> object:
    # A bare number would otherwise pass as days since 1970; only YYYY-MM-DD is a day here.
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD between 1970 and 2999")
    return value


ISO_DATE = re.compile(r"(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}")
"""Service days from 1970 to 2999: what bibo's clocks and months can represent."""
ServiceDay = Annotated[
    dt.date,
    Query(
        description="service day YYYY-MM-DD (03:00-03:00 Europe/Berlin), 1970 to 2999",
        json_schema_extra={"pattern": "^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"},
    ),
    BeforeValidator(_iso_date_only),
]


async def no_unknown_query_parameters(request: Request) -> None:
    """A query parameter the route does not know is refused, not silently ignored (a typo
    such as ``?serviceday=`` would otherwise return an unfiltered answer). Async because it
    does no I/O: FastAPI runs a plain ``def`` dependency in the thread pool, for every
    request."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known: set[str] = set()
    stack = [dependant]
    while stack:
        node = stack.pop()
        known.update(p.alias for p in node.query_params)
        stack.extend(node.dependencies)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown query parameter; expected one of {sorted(known) or 'none'}",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )
