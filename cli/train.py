"""`lorag train …` and `lorag retrain`: training data, LoRA training, and the quarterly job in one command."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.adapters import (
    AdminKeyOption,
    ForceOption,
    GateApiKeyOption,
    GateDatasetOption,
    GateMaxTokensOption,
    GateOptions,
    GateUrlOption,
    KindsOption,
    MarginOption,
    RouteOption,
    echo_promotion,
)
from cli.common import settings_for
from cli.errors import BAD_INPUT

if TYPE_CHECKING:
    from core.settings import Settings
    from training.registry import AdapterVersion

app = typer.Typer(no_args_is_help=True, help="Train LoRA adapters; check and build their data.")
data_app = typer.Typer(no_args_is_help=True, help="Build training data files.")
app.add_typer(data_app, name="data")

RecipeOption = Annotated[
    Path | None, typer.Option("--config", help="A training recipe, e.g. training/configs/demo.yaml.")
]


@app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    config: RecipeOption = None,
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
    settings = settings_for(ctx)
    version = train_candidate(settings, config, resume)
    typer.echo(f"registered {version.served_name} at {version.path}")
    typer.echo(f"a candidate: serve it with `lorag adapters promote {version.name} {version.version}`")


def retrain(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", help="A training recipe, e.g. training/configs/demo.yaml.")
    ],
    docs: Annotated[
        Path | None,
        typer.Option(
            "--docs",
            help="Regenerate the recipe's training data from these documents first (`train data from-docs`).",
        ),
    ] = None,
    data_out: Annotated[
        Path | None,
        typer.Option(
            "--data-out",
            help="Where the generated data goes (default: the folder of the recipe's first file).",
        ),
    ] = None,
    route: RouteOption = None,
    dataset: GateDatasetOption = None,
    kinds: KindsOption = "static",
    margin: MarginOption = None,
    url: GateUrlOption = None,
    api_key: GateApiKeyOption = None,
    admin_key: AdminKeyOption = None,
    max_tokens: GateMaxTokensOption = 64,
    force: ForceOption = False,
) -> None:
    """The quarterly job in one command: validate the recipe, train a candidate, gate it against the
    current version on its route's eval set, and promote it if it is not worse (exit 1 if refused).

    With --docs the data is regenerated first, incrementally (only changed chunks reach the teacher; the
    options the last run recorded in its card are repeated), and the gate runs on the union of the eval set
    the current version was gated on (else --dataset) and the new frozen eval set, less the items whose
    source changed; the candidate keeps that set (copy and hash). A killed run resumes its training."""
    from eval.gate_sets import GATE_SET
    from eval.promotion import promote_with_gate

    settings = settings_for(ctx)
    options = GateOptions(route, dataset, kinds, margin, api_key, admin_key, max_tokens)
    if docs is None:
        candidate = train_candidate(settings, config)
    else:
        candidate = retrain_from_docs(settings, config, docs, data_out, dataset)
        options = dataclasses.replace(options, dataset=candidate.path / GATE_SET)
    typer.echo(f"registered candidate {candidate.served_name}")
    done = promote_with_gate(
        settings, candidate.name, candidate.version, force=force, gateway_url=url, **options.keywords()
    )
    echo_promotion(done)


def retrain_from_docs(
    settings: Settings, config: Path, docs: Path, data_out: Path | None, dataset: Path | None
) -> AdapterVersion:
    """Regenerate the recipe's data from `docs`, build the gate set, train a candidate that keeps it."""
    from eval.datasets import DEMO_DATASET
    from eval.gate_sets import GATE_SET, kept_gate_set, retired_ids, write_gate_set
    from training.docs.card import recorded_options
    from training.recipe import load_config
    from training.registry import AdapterRegistry

    recipe = load_config(config)
    out = data_out or Path(recipe.data_files[0]).parent
    if (out / "train.jsonl").resolve() not in {Path(f).resolve() for f in recipe.data_files}:
        raise typer.BadParameter(
            f"{config} does not read {out / 'train.jsonl'}: add it to data_files, or pass that folder",
            param_hint="--data-out",
        )
    previous = recorded_options(out / "card.json")
    raft = previous.pop("raft", False)
    typer.echo(build_from_docs(settings, docs, out, raft_mode="dense" if raft else None, **previous))
    registry = AdapterRegistry(settings.adapters_dir)
    current = registry.current(recipe.output_name)
    # The kept set is part of the version's hashed files: a changed one fails here, not in the gate.
    kept = kept_gate_set(registry.verify(current.name, current.version) if current else None)
    old = [kept] if kept else [dataset or DEMO_DATASET]
    extra = [dataset] if kept and dataset else []
    work = settings.home / "train-runs"
    gate = write_gate_set(
        [*old, *extra, out / "eval.jsonl"],
        work / f"{recipe.output_name}-{GATE_SET}",
        retired_ids(out / "card.json"),
    )
    typer.echo(
        f"gate set: {gate.questions} questions from "
        + ", ".join(f"{s['path']} ({s['questions']})" for s in gate.sources)
        + (f"; {gate.retired} retired (their source changed)" if gate.retired else "")
    )
    return train_candidate(
        settings,
        config,
        resume=True,
        attachments={GATE_SET: gate.path},
        fields={"gate_eval": gate.manifest_field()},
    )


def train_candidate(
    settings: Settings,
    config: Path,
    resume: bool = False,
    *,
    attachments: dict[str, Path] | None = None,
    fields: dict[str, object] | None = None,
) -> AdapterVersion:
    """Validate the recipe against the server it is for, train, and register the adapter as a candidate
    (with `attachments` copied in and `fields` in its manifest)."""
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
        attachments=attachments,
        fields=fields,
    )


@app.command("validate")
def train_validate(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help='OpenAI chat JSONL ({"messages": [...]} a line).')],
    strict: Annotated[bool, typer.Option(help="Exit 2 (bad input) if there is any problem.")] = False,
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

    settings = settings_for(ctx)
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
        raise typer.Exit(BAD_INPUT)


@data_app.command("raft")
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
    from eval.datasets import raft_items
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever
    from training.raft import ABSTAIN_ANSWER, GoldChunks, build_raft_file

    settings = settings_for(ctx)
    items = raft_items(input)
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


@data_app.command("from-docs")
def train_data_from_docs(
    ctx: typer.Context,
    docs: Annotated[
        Path, typer.Option("--docs", help="The static documents: Markdown, text, HTML, JSONL (not PDF/DOCX).")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Where train.jsonl, eval.jsonl, pairs.jsonl, card.json and the cache go."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the planned teacher calls and what is cached.")
    ] = False,
    raft: Annotated[
        bool, typer.Option("--raft", help="Also write RAFT examples retrieved from the current index.")
    ] = False,
    raft_mode: Annotated[str, typer.Option(help="dense, bm25 or hybrid (as the route searches).")] = "dense",
    docs_indexed: Annotated[
        bool, typer.Option(help="The documents are also indexed: eval items name their source as gold.")
    ] = False,
    eval_share: Annotated[
        float, typer.Option(min=0.0, max=0.95, help="Share of facts held out for eval.jsonl (by fact hash).")
    ] = 0.2,
    question_samples: Annotated[int, typer.Option(min=0, help="Open question calls per sentence.")] = 2,
    targeted_spans: Annotated[
        int, typer.Option(min=0, help="'A question whose answer is X' calls per sentence.")
    ] = 2,
    paraphrase_samples: Annotated[int, typer.Option(min=0, help="Rewordings per training question.")] = 2,
    counterfactual: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --raft: examples per fact whose source has the answer changed, so the adapter "
            "learns to read sources over its memory (0: none).",
        ),
    ] = 2,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Teacher cache to use (default: OUT/teacher-cache.sqlite).")
    ] = None,
) -> None:
    """Training data from documents: the teacher (settings `teacher`; by default the base model, on a
    running server or a local vLLM started for the run) asks questions about each chunk, answers are
    checked against the chunk, and the kept pairs become chat examples plus a fact-level held-out eval set
    and a data card. Teacher calls are cached, so a re-run asks only about changed chunks."""
    if raft_mode not in ("dense", "bm25", "hybrid"):
        raise typer.BadParameter("use dense, bm25 or hybrid", param_hint="--raft-mode")
    settings = settings_for(ctx)
    result = build_from_docs(
        settings,
        docs,
        out,
        dry_run=dry_run,
        raft_mode=raft_mode if raft else None,
        docs_indexed=docs_indexed,
        eval_share=eval_share,
        question_samples=question_samples,
        targeted_spans=targeted_spans,
        paraphrase_samples=paraphrase_samples,
        counterfactual_per_fact=counterfactual,
        cache=cache,
    )
    typer.echo(result)
    if not dry_run:
        typer.echo(f"check it with: lorag train validate {out / 'train.jsonl'}")


def build_from_docs(
    settings: Settings,
    docs: Path,
    out: Path,
    *,
    dry_run: bool = False,
    raft_mode: str | None = None,
    **options: object,
) -> str:
    """Plan, then (unless `dry_run`) build the data; the report (or plan) as text. No teacher is reached
    or started when the cache answers every planned call."""
    from cli.teacher import open_cli_teacher
    from training.docs import format_plan, format_report, plan_dataset
    from training.docs.from_settings import build_from_settings, docs_options, teacher_identity

    chosen = docs_options(settings, docs, out, **options)
    if dry_run:
        return format_plan(plan_dataset(chosen, teacher_identity(settings.teacher), settings.teacher))
    result = build_from_settings(
        settings,
        chosen,
        lambda: open_cli_teacher(settings),
        raft_index=settings if raft_mode else None,
        raft_mode=raft_mode or "dense",
    )
    return format_report(result, str(out))
