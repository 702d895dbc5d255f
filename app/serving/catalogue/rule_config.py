"""Business-rule declarations: which items may be shown, and which are boosted.

``BusinessRules`` comes from the TOML file ``RECSERVE_BUSINESS_RULES_FILE`` (see
``examples/business_rules.toml``) and applies to every list the service returns; an
``ItemFilter`` can also narrow one content slot. Hidden items are never shown, whatever the
configuration. Unknown keys are errors, reported with the file and the field.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.experiments.config import _describe as describe_error  # shared TOML error wording


def check_price_bounds(price_min: float | None, price_max: float | None) -> None:
    """A price range whose two ends are given must not be upside down."""
    if price_min is not None and price_max is not None and price_min > price_max:
        raise ValueError(f"price_min {price_min} is above price_max {price_max}")


class RulesConfigError(ValueError):
    """A rules or slots file cannot be read or breaks a rule; one line per problem."""


class StrictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemFilter(StrictConfig):
    """Items a list may hold. An item without a price fails any price bound."""

    categories: list[str] | None = Field(
        default=None, min_length=1, description="Only items in one of these categories."
    )
    exclude_categories: list[str] = Field(default_factory=list)
    price_min: float | None = Field(default=None, ge=0, description="Inclusive.")
    price_max: float | None = Field(default=None, ge=0, description="Inclusive.")
    exclude_out_of_stock: bool | None = Field(
        default=None,
        description="A slot's choice wins over the business rules'; unset everywhere: true.",
    )

    @model_validator(mode="after")
    def _bounds_ordered(self) -> ItemFilter:
        check_price_bounds(self.price_min, self.price_max)
        return self

    def key(self) -> str:
        """A short digest naming this filter in cache keys."""
        return hashlib.blake2b(self.model_dump_json().encode(), digest_size=6).hexdigest()


class Boost(StrictConfig):
    """Multiply the score of one item, or of every item in a category, by ``factor``."""

    category: str | None = None
    item_id: str | None = None
    factor: float = Field(gt=0, description="> 1 promotes, < 1 demotes.")

    @model_validator(mode="after")
    def _one_target(self) -> Boost:
        if (self.category is None) == (self.item_id is None):
            raise ValueError("give exactly one of `category` and `item_id`")
        return self


class BusinessRules(StrictConfig):
    filters: ItemFilter = ItemFilter()
    boosts: list[Boost] = Field(default_factory=list)


def load_business_rules(path: Path | None) -> BusinessRules:
    """The rules in ``path`` (none: out-of-stock and hidden items excluded, no boosts)."""
    if path is None:
        return BusinessRules()
    raw = read_toml(path)
    try:
        return BusinessRules.model_validate(raw)
    except ValidationError as exc:
        raise validation_problems(path, exc, raw) from exc


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RulesConfigError(f"{path}: {exc}") from exc


def validation_problems(
    source: Path, exc: ValidationError, raw: dict[str, Any]
) -> RulesConfigError:
    """One line per problem, ``slots[home-top].k: ...``, under the file name."""
    problems = [describe_error(error["loc"], error["msg"], raw) for error in exc.errors()]
    return RulesConfigError(f"{source}:\n  " + "\n  ".join(problems))
