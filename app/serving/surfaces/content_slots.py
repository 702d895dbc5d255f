"""CMS content slots, declared in a TOML file and validated once at start-up.

The file holds a ``[[slots]]`` array (see ``examples/content_slots.toml``). Titles are
templates over a fixed set of placeholders with no attribute access, indexing, conversion
or format spec, so a template can neither reach into objects nor blow up a title's length;
``fallback_title`` is shown when a placeholder has no value (a user without history).
Errors name the file, the slot id and the field: ``slots[home-top].k: ...``.
"""

from __future__ import annotations

import string
from enum import StrEnum
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from app.serving.catalogue.items import ItemCatalogue
from app.serving.catalogue.rule_config import (
    ItemFilter,
    RulesConfigError,
    StrictConfig,
    read_toml,
    validation_problems,
)

TITLE_FIELDS = ("last_item_title", "last_item_category")


class SlotStrategy(StrEnum):
    PERSONALIZED = "personalized"  # the engine (model, or its popular fallback)
    POPULAR = "popular"  # the popularity list, the same for everyone
    SIMILAR_TO_LAST_ITEM = "similar_to_last_item"  # items related to the user's newest item


class Slot(StrictConfig):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = Field(min_length=1, max_length=200, description="Template, e.g. 'For {x}'.")
    fallback_title: str | None = Field(
        default=None, min_length=1, max_length=200, description="When a placeholder is empty."
    )
    k: int = Field(ge=1, le=100)
    strategy: SlotStrategy
    filters: ItemFilter = ItemFilter()
    fallback_items: list[str] = Field(
        default_factory=list, description="Shown, when allowed, if the strategy has too few."
    )
    repeat: bool = Field(
        default=False,
        description="A personalized slot in repeat mode: the user's likely rebuys may appear.",
    )
    max_age_seconds: int = Field(
        default=60, ge=0, le=86_400, description="Cache-Control max-age of the block."
    )

    @field_validator("title")
    @classmethod
    def _title_template(cls, title: str) -> str:
        template_fields(title)
        return title

    @field_validator("fallback_title")
    @classmethod
    def _fallback_plain(cls, title: str | None) -> str | None:
        if title is not None and template_fields(title):
            raise ValueError("fallback_title cannot hold placeholders")
        return title

    @model_validator(mode="after")
    def _fallback_title_when_needed(self) -> Slot:
        if template_fields(self.title) and self.fallback_title is None:
            raise ValueError(
                "fallback_title is required when the title has placeholders (shown to users "
                "without history)"
            )
        return self

    def render_title(self, values: dict[str, str | None]) -> str:
        """The title with ``values`` filled in, or ``fallback_title`` when one is missing."""
        needed = template_fields(self.title)
        if any(not values.get(name) for name in needed):
            return self.fallback_title or self.title
        return self.title.format_map({name: values[name] for name in needed})


class SlotsConfig(StrictConfig):
    slots: list[Slot] = Field(min_length=1)

    @field_validator("slots")
    @classmethod
    def _ids_unique(cls, slots: list[Slot]) -> list[Slot]:
        ids = [slot.id for slot in slots]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"slot ids must be unique (repeated: {', '.join(duplicates)})")
        return slots


def template_fields(template: str) -> set[str]:
    """The placeholders of ``template``; ``ValueError`` for anything but ``{known_name}``."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad title template {template!r}: {exc}") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TITLE_FIELDS or spec or conversion:
            raise ValueError(
                f"unsupported placeholder {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} (allowed: "
                + ", ".join(f"{{{f}}}" for f in TITLE_FIELDS)
                + "; literal braces are written {{ and }})"
            )
        names.add(name)
    return names


def load_slots(path: Path | None, catalogue: ItemCatalogue) -> dict[str, Slot]:
    """The slots of ``path`` by id, in file order (none without a file). Raises
    ``RulesConfigError`` naming the file, slot and field, including fallback items and
    filter categories the catalogue does not know."""
    if path is None:
        return {}
    raw = read_toml(path)
    try:
        slots = SlotsConfig.model_validate(raw).slots
    except ValidationError as exc:
        raise validation_problems(path, exc, raw) from exc
    problems = [problem for slot in slots for problem in _catalogue_problems(slot, catalogue)]
    if problems:
        raise RulesConfigError(f"{path}:\n  " + "\n  ".join(problems))
    return {slot.id: slot for slot in slots}


def _catalogue_problems(slot: Slot, catalogue: ItemCatalogue) -> list[str]:
    where = f"slots[{slot.id}]"
    problems = []
    unknown_items = [i for i in slot.fallback_items if i not in catalogue.index]
    if unknown_items:
        problems.append(f"{where}.fallback_items: unknown item(s) {', '.join(unknown_items)}")
    named = [*(slot.filters.categories or ()), *slot.filters.exclude_categories]
    unknown_categories = sorted({c for c in named if c not in catalogue.category_rows})
    if unknown_categories:
        known = ", ".join(sorted(catalogue.category_rows)) or "none"
        problems.append(
            f"{where}.filters: unknown categor(ies) {', '.join(unknown_categories)} "
            f"(known: {known})"
        )
    return problems
