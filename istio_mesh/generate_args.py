"""Write `istio_mesh/args.py`, the public API's argument types, from the stack config's
models (components.config, components.service_config).

One fact in one place: a config key, its type and its documentation are written once,
on the pydantic model that validates it. The component package needs them again as
`TypedDict`s with `pulumi.Input` annotations and attribute docstrings, because that is
what Pulumi's schema inference reads (pulumi.provider.experimental.analyzer: it parses
the class source for docstrings, so the types must exist as source, not be built at
run time). `tests/test_package.py` fails when `args.py` is not what this writes.

    venv/bin/python -m istio_mesh.generate_args      # rewrite istio_mesh/args.py
"""

import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pulumi.provider.experimental.analyzer import Analyzer
from pydantic import BaseModel, SecretStr

from components.config import MeshConfig
from istio_mesh.convert import strip_optional

LINE_LENGTH = 100
"""The line length of pyproject.toml's ruff settings."""
TARGET = Path(__file__).resolve().parent / "args.py"

HEADER = '''"""The public API's argument types: the stack config's keys, `pulumi.Input`-typed.

Written by `python -m istio_mesh.generate_args` from the config models
(components/config.py, components/service_config.py), which hold each key's type and
documentation; do not edit by hand. Keys are snake_case here and camelCase in the
package schema and in stack config (`high_availability` = `highAvailability`); what
they accept is checked when a component validates its args, as the stack checks its
config.
"""

from typing import Required, TypedDict

import pulumi
'''


def args_name(model: type[BaseModel]) -> str:
    """The argument type of a config model: the model's name (`IstioSettings`), which is
    also the schema type's (`istio-mesh:index:IstioSettings`), so that each language's
    SDK adds its own suffix once (TypeScript and Go `IstioSettingsArgs`); the whole
    config is `IstioMeshArgs`, the args of the component of that name."""
    return "IstioMeshArgs" if model is MeshConfig else model.__name__


def _strip(annotation: Any) -> tuple[Any, list[str]]:
    """The annotation without `Annotated` and `None`, and notes on what it accepts."""
    annotation = strip_optional(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        raise TypeError(f"no schema type for the union {annotation}")
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        note = "One of: " + ", ".join(f"`{value}`" for value in values) + "."
        return type(values[0]), [note]
    if annotation is SecretStr:
        return str, ["A secret: pass it as a secret Output."]
    return annotation, []


def render_type(annotation: Any, models: list[type[BaseModel]]) -> tuple[str, list[str]]:
    """The `pulumi.Input` annotation of a field's type, and notes for its docstring;
    appends each model met to `models`."""
    annotation, notes = _strip(annotation)
    origin = get_origin(annotation)
    if annotation in (str, int, float, bool):
        inner = annotation.__name__
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        models.append(annotation)
        inner = args_name(annotation)
    elif origin is list:
        item, item_notes = render_type(get_args(annotation)[0], models)
        inner, notes = f"list[{item}]", notes + item_notes
    elif origin is dict:
        key, value = get_args(annotation)
        if key is not str:
            raise TypeError(f"map keys must be strings: {annotation}")
        item, item_notes = render_type(value, models)
        inner, notes = f"dict[str, {item}]", notes + item_notes
    else:
        raise TypeError(f"no schema type for {annotation}")
    return f"pulumi.Input[{inner}]", notes


def _docstring(text: str, indent: str) -> list[str]:
    """`text` as a docstring, its paragraphs refilled to the line length ruff keeps."""
    text = text.replace('"""', "'''")
    lines: list[str] = []
    for paragraph in filter(None, (" ".join(part.split()) for part in text.split("\n\n"))):
        if lines:
            lines.append("")
        lines += textwrap.wrap(paragraph, width=LINE_LENGTH - len(indent) - 6)
    lines[0] = '"""' + lines[0]
    lines[-1] += '"""'
    return [f"{indent}{line}" if line else "" for line in lines]


def render_model(model: type[BaseModel], analyzer: Analyzer, models: list[type[BaseModel]]) -> str:
    lines = [f"class {args_name(model)}(TypedDict, total=False):"]
    lines += _docstring(model.__doc__ or "", "    ")
    for name, field in model.model_fields.items():
        annotation, notes = render_type(field.annotation, models)
        if field.is_required():
            annotation = f"Required[{annotation}]"
        description = analyzer.get_docstring(model, name)
        if not description:
            raise ValueError(f"{model.__name__}.{name} has no docstring: document it there")
        lines.append("")
        lines.append(f"    {name}: {annotation}")
        lines += _docstring(" ".join([description.strip(), *notes]), "    ")
    return "\n".join(lines)


def generate() -> str:
    """The text of `args.py`: every model reachable from `MeshConfig`, each after the
    models its fields name (the analyzer needs no forward references then)."""
    analyzer = Analyzer("istio-mesh")
    rendered: dict[type[BaseModel], str] = {}

    def visit(model: type[BaseModel]) -> None:
        if model in rendered:
            return
        rendered[model] = ""  # visiting: a cycle would be a forward reference
        found: list[type[BaseModel]] = []
        text = render_model(model, analyzer, found)
        for child in found:
            visit(child)
        del rendered[model]
        rendered[model] = text

    visit(MeshConfig)
    return HEADER + "".join(f"\n\n{text}\n" for text in rendered.values())


def main() -> int:
    TARGET.write_text(generate())
    print(f"wrote {TARGET}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
