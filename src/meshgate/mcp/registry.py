"""Management tools: a name, a description, a strict input model and a handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.errors import InvalidInput

if TYPE_CHECKING:
    from meshgate.runtime import Runtime


class ToolInput(BaseModel):
    """Base of every tool input: unknown fields and silent type coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, defer_build=True)


InputT = TypeVar("InputT", bound=ToolInput)


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a management tool handler gets: the caller, a session inside one transaction, the runtime."""

    principal: Principal
    session: AsyncSession
    runtime: Runtime


Handler = Callable[[ToolContext, InputT], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ToolSpec(Generic[InputT]):
    name: str
    description: str
    input_model: type[InputT]
    handler: Handler[InputT]
    read_only: bool = False

    def input_schema(self) -> dict[str, Any]:
        schema = self.input_model.model_json_schema()
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        return schema

    def parse(self, arguments: dict[str, Any] | None) -> InputT:
        """Validate arguments, turning pydantic's report into one line a person can act on."""
        try:
            return self.input_model.model_validate(arguments or {})
        except ValidationError as exc:
            raise InvalidInput(f"invalid arguments for {self.name}: {_first_problem(exc, self.input_model)}") from exc


def _first_problem(exc: ValidationError, model: type[BaseModel]) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "arguments"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(field.alias or name for name, field in model.model_fields.items()) or "none"
        return f"unknown field {where!r}; allowed fields: {allowed}"
    if error["type"] == "missing":
        return f"{where} is required"
    return f"{where}: {error['msg']}"


class ToolRegistry:
    """All management tools by name."""

    def __init__(self, specs: Iterable[ToolSpec[Any]] = ()) -> None:
        self._tools: dict[str, ToolSpec[Any]] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: ToolSpec[Any]) -> None:
        if spec.name in self._tools:
            raise ValueError(f"tool {spec.name} registered twice")
        self._tools[spec.name] = spec

    def get(self, name: str) -> ToolSpec[Any] | None:
        return self._tools.get(name)

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)
