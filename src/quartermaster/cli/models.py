"""`qm models …`: the operator's view of the model catalog and its rates."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Annotated, Any

import typer

from quartermaster.cli import common
from quartermaster.domain.principal import Principal
from quartermaster.services import catalog

app = typer.Typer(help="List catalogued models and edit their rates.", no_args_is_help=True)


@app.command("list")
def list_models(as_json: common.JsonOption = False) -> None:
    """List every model with its kind, rates, limits and whether it is enabled.

    Example: qm models list --json
    """
    specs = common.run(common.settings(), catalog.list_models)
    if as_json:
        common.print_json([asdict(spec) for spec in specs])
        return
    for spec in specs:
        rates = (
            f"training {spec.training_rate}"
            if spec.kind == "embedding"
            else f"input {spec.input_rate} output {spec.output_rate}"
        )
        state = "enabled" if spec.enabled else "disabled"
        common.console.print(f"{spec.name:<28} {spec.kind:<9} {state:<8} {rates}", highlight=False)


@app.command("set")
def set_model(
    name: Annotated[str, typer.Argument(help="The model's catalog name.")],
    input_rate: Annotated[
        str | None, typer.Option(help="Platform tokens per prompt token.")
    ] = None,
    output_rate: Annotated[str | None, typer.Option(help="Per completion token.")] = None,
    training_rate: Annotated[str | None, typer.Option(help="Per ingested token.")] = None,
    context_window: Annotated[int | None, typer.Option(help="Longest prompt, in tokens.")] = None,
    max_output_tokens: Annotated[int | None, typer.Option(help="Longest completion.")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Change a model's rates, limits or availability; audited; past charges keep their rates.

    Example: qm models set gpt-4o-mini --input-rate 1.5 --output-rate 6 --enabled
    """
    given: dict[str, Any] = {
        "input_rate": input_rate,
        "output_rate": output_rate,
        "training_rate": training_rate,
        "context_window": context_window,
        "max_output_tokens": max_output_tokens,
        "enabled": enabled,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    spec = common.run(
        common.settings(),
        lambda ctx: catalog.update_model(ctx, Principal.command_line(), name, **changes),
    )
    if as_json:
        common.print_json(asdict(spec))
    else:
        rates = ", ".join(f"{k}={v}" for k, v in asdict(spec).items() if isinstance(v, Decimal))
        common.console.print(f"{spec.name}: {rates}; enabled={spec.enabled}", highlight=False)
