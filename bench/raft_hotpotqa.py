"""RAFT on HotpotQA: does a retrieval-aware adapter read 10 retrieved paragraphs better than the base model?

    HF_HUB_OFFLINE=1 python -m bench.raft_hotpotqa [--data ../shared/data/hotpotqa] [--stage all]

Stages (each reuses what an earlier run left in `<home>/raft-hotpotqa/`, so they can run apart):
1. `data`: HotpotQA train's passages indexed as a corpus of their own; `lorag train data raft` logic turns
   every train question into a chat example with its gold paragraphs among distractors retrieved from that
   index (as many sources as the evaluation gives: 2 gold + 8 retrieved distractors, or 10 distractors
   for the 20% of examples without gold).
2. `train`: the recipe (`training/configs/raft-hotpotqa.yaml`) on those examples, registered in the dev
   set's evaluation home as adapter `hotpotqa`.
3. `eval`: `lorag eval run` on HotpotQA dev through a managed gateway whose routes retrieve k=10 paragraphs
   from the dev passages (the pooled distractor-setting pages): `base+rag` (the base model) against
   `hotpotqa+rag` (the RAFT adapter). Prints the report's table: exact match, F1, recall of the gold pages.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from core.settings import RouteConfig, Settings, load_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported (in the stages)

K = 10
"""Paragraphs in the prompt: the size of HotpotQA's distractor setting (2 gold + 8 others)."""
ADAPTER = "hotpotqa"
CONFIG = Path(__file__).resolve().parent.parent / "training" / "configs" / "raft-hotpotqa.yaml"
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "hotpotqa"


def routes() -> dict[str, RouteConfig]:
    """The two routes compared: same retrieval (k=10 dense), base model vs RAFT adapter."""
    return {
        "base+rag": RouteConfig(retrieval="always", k=K, description="Base model, 10 retrieved paragraphs."),
        f"{ADAPTER}+rag": RouteConfig(
            adapter=ADAPTER, retrieval="always", k=K, description="RAFT adapter, 10 retrieved paragraphs."
        ),
    }


def build_data(settings: Settings, train_file: Path, out: Path) -> None:
    """Index the train passages in their own home and write the RAFT chat examples to `out`."""
    from eval.datasets import load_dataset, raft_items
    from eval.gateway import dataset_home
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever
    from training.raft import GoldChunks, build_raft_file

    dataset = load_dataset(train_file)
    home = dataset_home(settings, "hotpotqa-train", dataset.documents)
    local = settings.model_copy(update={"home": home})
    retriever = open_retriever(local.index_dir, load_embedder(settings.embedder, settings.cache_dir))
    try:
        stats = build_raft_file(
            raft_items(train_file),
            out,
            lambda query, n: retriever.search(query, n, mode="dense"),
            GoldChunks(retriever.snapshot.store.chunks),
            k=2 * K,
            n_distractors=K - 2,
            p_gold=0.8,
            seed=0,
        )
    finally:
        retriever.close()
    print(f"RAFT data: {stats}", flush=True)


def train_adapter(settings: Settings, data: Path, dev_file: Path) -> None:
    """Train the recipe on the RAFT data and register it, current, in the dev set's evaluation home."""
    from eval.datasets import load_dataset
    from eval.gateway import dataset_home
    from training.recipe import load_config, train
    from training.registry import AdapterRegistry

    config = load_config(CONFIG)
    assert [p.resolve() for p in config.data_files] == [data.resolve()], "the preset reads what `data` wrote"
    dev_home = dataset_home(settings, dev_file.stem, load_dataset(dev_file).documents)
    registry_root = dev_home / "adapters"
    adapter = train(config, registry_root, settings.cache_dir, work_root=settings.home / "train-runs")
    AdapterRegistry(registry_root).promote(ADAPTER, adapter.version, forced=True, reason="RAFT benchmark")
    print(f"trained {adapter.served_name}: {json.dumps(adapter.manifest.get('metrics'))}", flush=True)


def evaluate(settings: Settings, dev_file: Path, limit: int | None) -> None:
    """Both routes on HotpotQA dev through a managed gateway; prints the report table."""
    from eval.commands import run_eval

    # The managed gateway is a child process: it reads its routes from the environment.
    os.environ["LORAG_ROUTES"] = json.dumps({name: route.model_dump() for name, route in routes().items()})
    run_eval(
        settings.model_copy(update={"routes": routes()}),
        dev_file,
        list(routes()),
        out=settings.home / "raft-hotpotqa" / "eval",
        max_tokens=32,
        limit=limit,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="Folder with train.jsonl and dev.jsonl."
    )
    parser.add_argument("--stage", choices=["all", "data", "train", "eval"], default="all")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N dev questions.")
    args = parser.parse_args()
    settings = load_settings()
    work = settings.home / "raft-hotpotqa"
    work.mkdir(parents=True, exist_ok=True)
    data = Path(__file__).resolve().parent.parent / "training" / "data" / "raft-hotpotqa" / "train.jsonl"
    if args.stage in ("all", "data"):
        build_data(settings, args.data / "train.jsonl", data)
    if args.stage in ("all", "train"):
        train_adapter(settings, data, args.data / "dev.jsonl")
    if args.stage in ("all", "eval"):
        evaluate(settings, args.data / "dev.jsonl", args.limit)


if __name__ == "__main__":
    main()
