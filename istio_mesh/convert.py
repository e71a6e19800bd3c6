"""From a public component's args to the validated config the builders take.

Args are the stack config's keys with Python names (`high_availability`); the config
models validate them under their camelCase names (`highAvailability`), which is also how
a problem's path is written (`istio-mesh:istio.highAvailability`), as for the stack.
The walk follows the models' fields, so the keys of a map (`tags`, `versions`, `labels`)
are kept as written, and taken in key order (the engine's wire keeps none).

Args may hold `pulumi.Output`s (another resource's output, a secret). The mesh can
only be validated as a whole, so a component waits for them all (`resolve`) and
declares its resources once they are known; one still unknown during a preview is a
config problem naming where it is (`unknown_paths`): validating half a mesh would let
through what the whole would refuse.
"""

import inspect
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

import pulumi
from pulumi.output import contains_unknowns
from pydantic import BaseModel

from components.config import PROJECT
from components.errors import ConfigError, ConfigProblem


def strip_optional(annotation: Any) -> Any:
    """The annotation without `Annotated` and `| None` (a union of several types stays)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            (annotation,) = members
        else:
            return annotation


def to_config(annotation: Any, value: Any) -> Any:
    """`value`, typed `annotation` in a config model, with each model's keys renamed to
    their config names. What does not fit the model is left as it is, for the model's
    validation to report at its path."""
    annotation = strip_optional(annotation)
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_to_config(annotation, value)
    if origin is list and isinstance(value, Sequence) and not isinstance(value, str):
        (item,) = get_args(annotation)
        return [to_config(item, element) for element in value]
    if origin is dict and isinstance(value, Mapping):
        # In key order: a map crosses the engine's wire in no particular order, and the
        # objects built from it (a route's destinations from `versions`) must be the same
        # whichever language declared them.
        _, item = get_args(annotation)
        return {key: to_config(item, value[key]) for key in sorted(value)}
    if annotation is int and isinstance(value, float) and value.is_integer():
        # Numbers cross the engine's wire as floats; the models take no float for an int.
        return int(value)
    return value


def model_to_config(model: type[BaseModel], value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    converted: dict[str, Any] = {}
    for key, element in value.items():
        field = model.model_fields.get(key)
        if field is None:
            converted[key] = element  # a config name already, or unknown: the model says
            continue
        converted[field.alias or key] = to_config(field.annotation, element)
    return converted


def has_outputs(value: Any) -> bool:
    """Whether `value` holds an Output or an awaitable anywhere."""
    if isinstance(value, pulumi.Output) or inspect.isawaitable(value):
        return True
    if isinstance(value, Mapping):
        return any(has_outputs(element) for element in value.values())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return any(has_outputs(element) for element in value)
    return False


def unknown_paths(value: Any, path: str) -> list[str]:
    """Where `value` (resolved with unknowns kept) is still unknown, as config paths."""
    if not contains_unknowns(value):
        return []
    if isinstance(value, Mapping):
        children = [(f"{path}.{key}", element) for key, element in value.items()]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        children = [(f"{path}[{index}]", element) for index, element in enumerate(value)]
    else:
        return [path]
    return [found for where, element in children for found in unknown_paths(element, where)]


def unknown_error(value: Any, component: str) -> ConfigError | None:
    """The problem to report when `value` is still unknown (a preview before the
    resources it comes from exist), or None."""
    paths = unknown_paths(value, PROJECT)
    if not paths:
        return None
    return ConfigError(
        ConfigProblem(
            path.replace(f"{PROJECT}.", f"{PROJECT}:", 1),
            f"unknown until the resource it comes from exists: {component} validates its "
            "whole config before declaring anything, so pass a value known at preview "
            "(a literal, a stack config value, or an output of an existing resource)",
        )
        for path in paths
    )
