"""`qm dataset …`: create and list a member's datasets, ingest files and folders into one, and
delete one document from it.

Commands act as the member named by `--user` (the operator at the command line holds the
database's credentials already); uploads are charged to that member's training tokens exactly
as through the API.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.table import Table

from quartermaster.cli import common, ingest_progress
from quartermaster.domain.errors import DomainError, NotFound
from quartermaster.domain.principal import Principal
from quartermaster.providers.config import load_upstreams
from quartermaster.providers.registry import ProviderRegistry, build_registry
from quartermaster.rag import SUPPORTED_SUFFIXES
from quartermaster.services import catalog, datasets
from quartermaster.services.context import Context
from quartermaster.services.datasets import ingestion, progress
from quartermaster.services.identity import accounts
from quartermaster.settings import Settings

app = typer.Typer(
    help="Datasets: create, list, ingest documents, and delete one.", no_args_is_help=True
)
UserOption = Annotated[str, typer.Option("--user", help="The member's email: who acts and pays.")]


async def _member(ctx: Context, email: str) -> Principal:
    async with ctx.uow.begin(write=False) as tx:
        user = await accounts.find_user_by_email(tx.session, email)
    if user is None:
        raise NotFound(f"no account is registered for {email}")
    return Principal(user.id, is_operator=False, mfa_verified=True, via="cli")


async def _ingestion_providers(ctx: Context, config: Settings) -> ProviderRegistry:
    """Providers for the enabled embedding and speech models: ingestion needs nothing else."""
    specs = [s for s in await catalog.list_models(ctx) if s.kind.trains]
    return build_registry(specs, load_upstreams(config.upstreams_file))


def files_under(paths: list[Path]) -> list[Path]:
    """Files given by name as they are (refused later if unreadable); folders recursively, only
    the supported types, in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise common.fail(f"{path} does not exist")
    return found


@app.command("create")
def create(
    name: str,
    user: UserOption,
    shared: Annotated[bool, typer.Option("--shared", help="Share with the member's org.")] = False,
    embedding_model: Annotated[
        str | None, typer.Option(help="An embedding model; the local MiniLM by default.")
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Create an empty dataset owned by a member.

    Example: qm dataset create "Handbook" --user ann@abc.example --shared
    """

    async def work(ctx: Context) -> datasets.DatasetView:
        member = await _member(ctx, user)
        return await datasets.create(ctx, member, name, shared, embedding_model)

    view = common.run(common.settings(), work)
    common.report(view.as_dict(), as_json, f"created dataset {view.name!r} (id {view.id})")


@app.command("list")
def list_datasets(user: UserOption, as_json: common.JsonOption = False) -> None:
    """List a member's datasets and those shared with their organization.

    Example: qm dataset list --user ann@abc.example --json
    """

    async def work(ctx: Context) -> list[datasets.DatasetView]:
        return await datasets.list_datasets(ctx, await _member(ctx, user))

    views = common.run(common.settings(), work)
    if as_json:
        common.print_json([view.as_dict() for view in views])
        return
    table = Table("id", "name", "documents", "chunks", "tokens", "shared", "owned")
    for v in views:
        row = (v.id, v.name, v.document_count, v.chunk_count, v.tokens, v.shared_with_org, v.owned)
        table.add_row(*map(str, row))
    common.console.print(table)


@app.command("show")
def show(
    dataset: Annotated[int, typer.Argument(help="The dataset's id.")],
    user: UserOption,
    as_json: common.JsonOption = False,
) -> None:
    """Show a dataset and its documents, with their ids.

    Example: qm dataset show 3 --user ann@abc.example
    """

    async def work(ctx: Context) -> dict[str, Any]:
        return await datasets.get(ctx, await _member(ctx, user), dataset)

    found = common.run(common.settings(), work)
    if as_json:
        common.print_json(found)
        return
    table = Table("id", "file", "type", "tokens", "chunks", "added", title=found["name"])
    for d in found["documents"]:
        row = (d["id"], d["filename"], d["content_type"], d["tokens"], d["chunks"])
        table.add_row(*map(str, row), d["created_at"].strftime("%Y-%m-%d"))
    common.console.print(table)


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursively).")],
    dataset: Annotated[int, typer.Option("--dataset", help="The dataset's id.")],
    user: UserOption,
    as_json: common.JsonOption = False,
) -> None:
    """Upload files into a dataset, charged as the member's training tokens, with progress by
    work done (chunks embedded, per file and stage) and a summary. A refused file (unreadable,
    duplicate, over the cap) does not stop the others; the exit status is 1 if any file was
    refused.

    Example: qm dataset ingest ./handbook ./faq.pdf --dataset 3 --user ann@abc.example
    """
    config = common.settings()
    files = files_under(paths)
    results = common.run(config, lambda ctx: _ingest_all(ctx, config, files, dataset, user))
    if as_json:
        common.print_json(results)
    else:
        common.console.print(_summary(results))
    if any(result["status"] != "stored" for result in results):
        raise typer.Exit(code=1)


async def _ingest_all(
    ctx: Context, config: Settings, files: list[Path], dataset_id: int, email: str
) -> list[dict[str, Any]]:
    member = await _member(ctx, email)
    if not files:
        return []
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes would break the bar
    results: list[dict[str, Any]] = []
    async with await _ingestion_providers(ctx, config) as providers:
        with ingest_progress.shown(Console(stderr=True)) as emit:
            upload = progress.UploadProgress(len(files), emit)
            for path in files:
                on_progress = upload.start(path.name)
                results.append(await _one(ctx, providers, member, dataset_id, path, on_progress))
            upload.finish()
    return results


async def _one(
    ctx: Context,
    providers: ProviderRegistry,
    member: Principal,
    dataset_id: int,
    path: Path,
    on_progress: progress.OnProgress,
) -> dict[str, Any]:
    try:
        data = await anyio.Path(path).read_bytes()
        stored = await ingestion.ingest(
            ctx, providers, member, dataset_id, path.name, data, on_progress
        )
    except DomainError as exc:
        return {"path": str(path), "status": "refused", "code": exc.code, "error": exc.message}
    except OSError as exc:
        return {"path": str(path), "status": "refused", "code": "unreadable", "error": str(exc)}
    return {"path": str(path), "status": "stored", **stored.as_dict()}


@app.command("delete-document")
def delete_document(
    document: Annotated[
        int, typer.Argument(help="The document's id (`qm dataset show` lists them).")
    ],
    dataset: Annotated[int, typer.Option("--dataset", help="The dataset's id.")],
    user: UserOption,
    as_json: common.JsonOption = False,
) -> None:
    """Delete one document from a dataset with its chunks and vectors (the dataset's owner);
    the training tokens it was charged stay in the usage history.

    Example: qm dataset delete-document 12 --dataset 3 --user ann@abc.example
    """

    async def work(ctx: Context) -> None:
        await datasets.remove_document(ctx, await _member(ctx, user), dataset, document)

    common.run(common.settings(), work)
    done = {"dataset_id": dataset, "document_id": document, "deleted": True}
    common.report(done, as_json, f"deleted document {document} from dataset {dataset}")


def _summary(results: list[dict[str, Any]]) -> Table:
    stored = [r for r in results if r["status"] == "stored"]
    table = Table(
        "file",
        "result",
        "chunks",
        "tokens",
        "charged",
        title=f"{len(stored)} of {len(results)} files stored, "
        f"{sum(r['tokens_charged'] for r in stored)} training tokens charged",
    )
    for r in results:
        if r["status"] == "stored":
            table.add_row(
                r["path"], "stored", str(r["chunks"]), str(r["tokens"]), str(r["tokens_charged"])
            )
        else:
            table.add_row(r["path"], f"[red]{r['error']}[/red]", "", "", "")
    return table
