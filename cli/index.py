"""`lorag index …`: build, refresh, inspect and roll back the retrieval index."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import CorpusOption, settings_for

app = typer.Typer(no_args_is_help=True, help="Build and query the retrieval index.")


@app.command("build")
def index_build(ctx: typer.Context, corpus: CorpusOption = None) -> None:
    """Chunk, embed and index a corpus into a new snapshot, then make it current."""
    from retrieval.build import build_index

    path = build_index(settings_for(ctx, corpus_dir=corpus))
    typer.echo(f"snapshot {path.name} is current")


@app.command("refresh")
def index_refresh(ctx: typer.Context, corpus: CorpusOption = None) -> None:
    """Bring the index up to date with the corpus, embedding only new and changed chunks (for cron)."""
    from retrieval.build import refresh

    result = refresh(settings_for(ctx, corpus_dir=corpus))  # skipped files are logged as warnings
    typer.echo(result.summary())


@app.command("delete")
def index_delete(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="A source id, e.g. policies/returns.md or faq.jsonl#42.")],
) -> None:
    """Remove one document (or every record of a JSONL file) from the index right away."""
    from retrieval.refresh import delete_source

    settings = settings_for(ctx)
    snapshot_id = delete_source(settings.index_dir, source_id, keep=settings.index.keep_snapshots)
    typer.echo(f"snapshot {snapshot_id} is current, without {source_id}")


@app.command("stats")
def index_stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The current snapshot in numbers."""
    from retrieval.refresh import stats

    numbers = stats(settings_for(ctx).index_dir)
    if as_json:
        typer.echo(json.dumps(numbers, indent=2))
        return
    for key, value in numbers.items():
        typer.echo(f"{key:12} {value}")


@app.command("snapshots")
def index_snapshots(ctx: typer.Context) -> None:
    """Every kept snapshot, oldest first; `*` marks the current one."""
    from retrieval.snapshots import list_snapshots

    snapshots = list_snapshots(settings_for(ctx).index_dir)
    for info in snapshots:
        manifest = info.manifest
        mark = "*" if info.current else " "
        typer.echo(
            f"{mark} {manifest.snapshot_id:28} {manifest.created_at[:19]}  {len(manifest.documents):5} docs "
            f"{manifest.chunk_count:7} chunks  parent {manifest.parent or '-'}"
        )


@app.command("rollback")
def index_rollback(ctx: typer.Context) -> None:
    """Make the current snapshot's parent current again (gateways follow within seconds)."""
    from retrieval.refresh import rollback

    snapshot_id = rollback(settings_for(ctx).index_dir)
    typer.echo(f"snapshot {snapshot_id} is current")


@app.command("search")
def index_search(
    ctx: typer.Context,
    query: str,
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 3,
    mode: Annotated[str, typer.Option(help="dense, bm25 or hybrid.")] = "dense",
) -> None:
    """Search the current snapshot, as the gateway does."""
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever

    if mode not in ("dense", "bm25", "hybrid"):
        raise typer.BadParameter(f"{mode!r}: use dense, bm25 or hybrid", param_hint="--mode")
    settings = settings_for(ctx)
    retriever = open_retriever(settings.index_dir, load_embedder(settings.embedder, settings.cache_dir))
    hits = retriever.search(query, k, mode=mode)  # type: ignore[arg-type]
    for hit in hits:
        typer.echo(f"{hit.score:.3f}  {hit.chunk.source_id}  {hit.chunk.chunk_id}  {hit.chunk.title}")
        typer.echo(f"       {hit.chunk.text[:160]!r}")
