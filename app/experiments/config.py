"""A/B experiment declarations, read from a TOML file and validated once at start-up.

The file holds an ``[[experiments]]`` array (see ``examples/experiments.toml``). Every model
forbids unknown keys so a typo is an error, not a silently ignored setting. Errors are reported
as ``experiments[<id>].<field>: <problem>``, using the experiment id (and variant name) rather
than list positions, so the message points at the right block of the file.

Config order matters: ``assignment.assign`` puts a request in the first experiment that takes it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)


class ExperimentConfigError(ValueError):
    """The experiments file cannot be read or breaks a rule; one line per problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )


class ModelStrategy(_Strict):
    """Rank with the ONNX model; ``model_version`` pins a version instead of ``CURRENT``."""

    kind: Literal["model"]
    model_version: str | None = Field(
        default=None, min_length=1, description="None: the published one."
    )


class PopularStrategy(_Strict):
    """Serve the popularity list (the baseline most experiments compare against)."""

    kind: Literal["popular"]


class DiversifiedStrategy(_Strict):
    """Model ranking re-ranked for diversity (MMR): score = λ·relevance - (1-λ)·similarity."""

    kind: Literal["diversified"]
    lambda_: float = Field(alias="lambda", ge=0, le=1, description="1: relevance only.")


class CandidateMixStrategy(_Strict):
    """Draw candidates from several sources in proportion to ``source_weights``."""

    kind: Literal["candidate_mix"]
    source_weights: dict[str, float] = Field(min_length=1)

    @field_validator("source_weights")
    @classmethod
    def _weights_usable(cls, weights: dict[str, float]) -> dict[str, float]:
        negative = sorted(name for name, weight in weights.items() if weight < 0)
        if negative:
            raise ValueError(f"weights must be >= 0 (negative: {', '.join(negative)})")
        if sum(weights.values()) <= 0:
            raise ValueError("weights must sum to > 0")
        return weights


Strategy = Annotated[
    ModelStrategy | PopularStrategy | DiversifiedStrategy | CandidateMixStrategy,
    Field(discriminator="kind"),
]


class Variant(_Strict):
    name: str = Field(min_length=1)
    weight: float = Field(ge=0, description="Relative share of the experiment's users.")
    strategy: Strategy


class Targeting(_Strict):
    """Who an experiment applies to. An absent list means everyone; values match exactly."""

    segments: list[str] | None = Field(default=None, min_length=1)
    devices: list[str] | None = Field(default=None, min_length=1)

    def matches(self, segment: str | None, device: str | None) -> bool:
        """True when the request's segment and device are both allowed."""
        if self.segments is not None and segment not in self.segments:
            return False
        return self.devices is None or device in self.devices


class Experiment(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    traffic_share: float = Field(ge=0, le=1, description="Fraction of eligible users enrolled.")
    variants: list[Variant] = Field(min_length=2)
    control: str = Field(description="Name of the variant every other one is compared with.")
    targeting: Targeting = Targeting()
    start: AwareDatetime | None = Field(
        default=None, description="Inclusive; None: already running."
    )
    stop: AwareDatetime | None = Field(default=None, description="Exclusive; None: open-ended.")
    min_detectable_effect: float = Field(gt=0, description="Relative lift, 0.05 = +5 %.")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)

    @field_validator("variants")
    @classmethod
    def _variants_usable(cls, variants: list[Variant]) -> list[Variant]:
        names = [variant.name for variant in variants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique (repeated: {', '.join(duplicates)})")
        if sum(variant.weight for variant in variants) <= 0:
            raise ValueError("weights must sum to > 0")
        return variants

    @field_validator("control")
    @classmethod
    def _control_is_a_variant(cls, control: str, info: ValidationInfo) -> str:
        variants: list[Variant] | None = info.data.get("variants")
        if variants is None:  # variants already failed; that error is reported instead
            return control
        names = [variant.name for variant in variants]
        if control not in names:
            raise ValueError(f"control {control!r} is not one of the variants {names}")
        if next(v for v in variants if v.name == control).weight <= 0:
            raise ValueError(f"control {control!r} has weight 0 and would get no users")
        return control

    @field_validator("stop")
    @classmethod
    def _stop_after_start(
        cls, stop: AwareDatetime | None, info: ValidationInfo
    ) -> AwareDatetime | None:
        start = info.data.get("start")
        if stop is not None and start is not None and stop <= start:
            raise ValueError(f"stop {stop.isoformat()} must be after start {start.isoformat()}")
        return stop

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; KeyError when there is none."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"experiment {self.id!r} has no variant {name!r}")


class ExperimentsConfig(_Strict):
    experiments: list[Experiment] = Field(default_factory=list)

    @field_validator("experiments")
    @classmethod
    def _ids_unique(cls, experiments: list[Experiment]) -> list[Experiment]:
        ids = [experiment.id for experiment in experiments]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"experiment ids must be unique (repeated: {', '.join(duplicates)})")
        return experiments


def load_experiments(path: Path) -> tuple[Experiment, ...]:
    """Read and validate ``path``; raise ``ExperimentConfigError`` naming the file and fields."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ExperimentConfigError(f"{path}: {exc}") from exc
    return parse_experiments(raw, source=str(path))


def parse_experiments(raw: dict[str, Any], source: str = "<config>") -> tuple[Experiment, ...]:
    """Validate an already-parsed document (the TOML tables as Python values)."""
    try:
        return tuple(ExperimentsConfig.model_validate(raw).experiments)
    except ValidationError as exc:
        problems = [_describe(error["loc"], error["msg"], raw) for error in exc.errors()]
        raise ExperimentConfigError(f"{source}:\n  " + "\n  ".join(problems)) from exc


def _describe(loc: Sequence[int | str], message: str, raw: Any) -> str:
    """``experiments[ab-1].variants[treatment].weight: ...`` from a pydantic error location."""
    path = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            element = node[part] if isinstance(node, list) and part < len(node) else None
            path += f"[{_label(element, part)}]"
            node = element
        else:
            path += f".{part}" if path else part
            node = node.get(part) if isinstance(node, dict) else None
    return f"{path or '<root>'}: {message.removeprefix('Value error, ')}"


def _label(element: Any, index: int) -> str:
    """The element's ``id`` or ``name`` when it has one, otherwise ``#index``."""
    if isinstance(element, dict):
        for key in ("id", "name"):
            if isinstance(element.get(key), str) and element[key]:
                return str(element[key])
    return f"#{index}"
