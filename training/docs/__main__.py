"""`python -m training.docs --docs DIR --out DIR [--dry-run]`: what `lorag train data from-docs` runs.

Usable before the CLI wires it. Settings (teacher, chunking, index) come from `lorag.yaml` / `LORAG_*`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.settings import load_settings
from training.docs import (
    DocsDataError,
    DocsOptions,
    RaftSource,
    build_dataset,
    format_plan,
    format_report,
    open_teacher,
    plan_dataset,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, print the report (or the one-line error); the exit status says which."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, required=True, help="the documents folder")
    parser.add_argument("--out", type=Path, required=True, help="the output folder")
    parser.add_argument("--dry-run", action="store_true", help="print the planned teacher calls only")
    parser.add_argument("--settings", type=Path, default=None, help="lorag.yaml to read")
    parser.add_argument("--eval-share", type=float, default=0.2)
    parser.add_argument("--question-samples", type=int, default=2)
    parser.add_argument("--targeted-spans", type=int, default=2)
    parser.add_argument("--paraphrase-samples", type=int, default=2)
    parser.add_argument("--raft", action="store_true", help="add RAFT examples from the current index")
    parser.add_argument("--raft-mode", default="dense", help="dense, bm25 or hybrid (as the route searches)")
    args = parser.parse_args(argv)
    settings = load_settings(args.settings)
    try:
        options = DocsOptions(
            args.docs,
            args.out,
            chunking=settings.chunking,
            max_document_bytes=settings.index.max_document_bytes,
            question_samples=args.question_samples,
            targeted_spans=args.targeted_spans,
            paraphrase_samples=args.paraphrase_samples,
            eval_share=args.eval_share,
        )
        teacher = open_teacher(settings.teacher)
        if args.dry_run:
            print(format_plan(plan_dataset(options, teacher.identity, settings.teacher)))
            return 0
        if not args.raft:
            print(format_report(build_dataset(options, teacher, settings.teacher), str(args.out)))
            return 0
        from retrieval.embedders import load_embedder
        from retrieval.search import open_retriever

        retriever = open_retriever(settings.index_dir, load_embedder(settings.embedder, settings.cache_dir))
        try:
            source = RaftSource(lambda query, k: retriever.search(query, k, mode=args.raft_mode))
            print(format_report(build_dataset(options, teacher, settings.teacher, source), str(args.out)))
        finally:
            retriever.close()
    except (DocsDataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
