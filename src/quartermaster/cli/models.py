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
            if spec.kind.trains
            else f"input {spec.input_rate} output {spec.output_rate}"
        )
        state = "enabled" if spec.enabled else "disabled"
        line = f"{spec.name:<28} {spec.kind:<13} {state:<8} {rates}"
        common.console.print(f"{line:<72} {_abilities(spec)}", highlight=False, soft_wrap=True)


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
    tools: Annotated[
        bool | None, typer.Option("--tools/--no-tools", help="Takes tool definitions and calls.")
    ] = None,
    vision: Annotated[
        bool | None, typer.Option("--vision/--no-vision", help="Takes image parts.")
    ] = None,
    audio_input: Annotated[
        bool | None, typer.Option("--audio-input/--no-audio-input", help="Takes audio parts.")
    ] = None,
    logprobs: Annotated[
        bool | None, typer.Option("--logprobs/--no-logprobs", help="Returns log probabilities.")
    ] = None,
    max_choices: Annotated[int | None, typer.Option(help="The largest n (1-128).")] = None,
    image_tokens: Annotated[
        int | None, typer.Option(help="The most one image costs, in prompt tokens.")
    ] = None,
    prompt_margin_pct: Annotated[
        int | None, typer.Option(help="Percent added to the counted prompt when holding.")
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Change a model's rates, limits, capabilities or availability; audited; past charges keep
    their rates.

    Example: qm models set gpt-4o-mini --input-rate 1.5 --output-rate 6 --enabled --tools
    """
    given: dict[str, Any] = {
        "input_rate": input_rate,
        "output_rate": output_rate,
        "training_rate": training_rate,
        "context_window": context_window,
        "max_output_tokens": max_output_tokens,
        "enabled": enabled,
        "tools": tools,
        "vision": vision,
        "audio_input": audio_input,
        "logprobs": logprobs,
        "max_choices": max_choices,
        "image_tokens": image_tokens,
        "prompt_margin_pct": prompt_margin_pct,
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
        common.console.print(
            f"{spec.name}: {rates}; enabled={spec.enabled}; {_abilities(spec)}", highlight=False
        )


def _abilities(spec: catalog.ModelSpec) -> str:
    """What the model takes beyond text, as `qm models set` names it."""
    if spec.kind != "chat":
        return ""
    can = ", ".join(flag.replace("_", "-") for flag in catalog.CAPABILITIES if getattr(spec, flag))
    return f"takes {can or 'text only'}; n up to {spec.max_choices}"
