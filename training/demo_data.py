"""Build the demo adapter's training file from the demo facts, RAFT templates and the demo corpus.

Three kinds of example, all OpenAI chat JSONL:

- `static`: every paraphrased question about a static fact, answered with one of the fact's responses
  and no system message, so the adapter learns the fact itself.
- `raft_context` (RAFT "read the context"): a filled-in template passage given as a retrieved source,
  alone or next to up to two unrelated corpus chunks, with the answer only the passage holds. The slot
  values are random, so the answer cannot be memorised: the adapter has to read the sources. The passage
  is labelled like a corpus chunk (a corpus source id, a heading made of its first words), so "which
  source is the answer in" cannot be learnt from its label.
- `raft_ignore` (RAFT "ignore irrelevant context"): a static question with one to three unrelated corpus
  chunks as sources, answered from the adapter's own knowledge, so irrelevant sources do not derail it.

Serving retrieves `k` chunks (1 on the default routes, more with larger models), so examples carry one to
three sources.

Sources go into the prompt through `core.prompting.with_retrieved_context` and are cut by the retrieval
chunker, so training sees exactly the format serving produces. Output is a pure function of the inputs and
the seed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import retrieval
from core.prompting import Message, with_retrieved_context
from core.settings import ChunkingSettings
from core.types import Chunk, Hit
from retrieval.chunking import chunk_document
from retrieval.sources import Document, load_documents

DEMO_DIR = Path(__file__).parent / "data" / "demo"
DEMO_TRAIN_FILE = DEMO_DIR / "train.jsonl"
"""Where the demo dataset is written; `configs/demo.yaml` trains on it."""
DEMO_CORPUS = Path(retrieval.__file__).parent / "demo_corpus"
DEMO_SEED = 0
FILLINGS_PER_TEMPLATE = 6
QUESTIONS_PER_FACT_WITH_NOISE = 2
MAX_DISTRACTORS = 2
NOISE_CHUNKS = 3
TITLE_WORDS = 5
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class DemoDatasetStats:
    """What `build_demo_dataset` wrote."""

    path: str
    static: int
    raft_context: int
    raft_ignore: int
    total: int


def build_demo_dataset(
    out_path: Path,
    seed: int = DEMO_SEED,
    demo_dir: Path = DEMO_DIR,
    corpus_dir: Path = DEMO_CORPUS,
    chunking: ChunkingSettings | None = None,
) -> DemoDatasetStats:
    """Write the demo training file to `out_path` (deterministic for a given seed and inputs)."""
    facts = read_jsonl(demo_dir / "facts.jsonl")
    templates = read_jsonl(demo_dir / "raft_templates.jsonl")
    check_inputs(facts, templates)
    chunking = chunking or ChunkingSettings()
    corpus = corpus_chunks(corpus_dir, chunking)
    rng = random.Random(seed)
    static = [example for fact in facts for example in static_examples(fact)]
    context = [ex for template in templates for ex in context_examples(template, corpus, chunking, rng)]
    ignore = [example for fact in facts for example in ignore_examples(fact, corpus, rng)]
    examples = [*static, *context, *ignore]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as out:
        for messages in examples:
            out.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return DemoDatasetStats(str(out_path), len(static), len(context), len(ignore), len(examples))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file (blank lines skipped)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def check_inputs(facts: Sequence[dict[str, Any]], templates: Sequence[dict[str, Any]]) -> None:
    """Refuse facts whose responses drop the answer, and templates whose response lacks the answer slot.

    Every training target must state the answer itself: a response that paraphrases it away would teach
    the adapter a fact that the eval (which looks for the answer string) cannot see.
    """
    problems = [
        f"fact {fact['id']}: response {response!r} does not contain the answer {fact['answer']!r}"
        for fact in facts
        for response in fact["responses"]
        if fact["answer"].lower() not in response.lower()
    ]
    problems += [
        f"template {template['id']}: response has no {{{template['answer_slot']}}} placeholder"
        for template in templates
        if f"{{{template['answer_slot']}}}" not in template["response"]
    ]
    if problems:
        raise ValueError("demo data problems:\n" + "\n".join(problems))


def corpus_chunks(corpus_dir: Path, chunking: ChunkingSettings) -> list[Chunk]:
    """The corpus cut exactly as the index cuts it, in a stable order (source id, then position)."""
    chunks = [chunk for doc in load_documents(corpus_dir) for chunk in chunk_document(doc, chunking)]
    if len(chunks) < NOISE_CHUNKS:
        raise ValueError(
            f"the corpus in {corpus_dir} has {len(chunks)} chunks; at least {NOISE_CHUNKS} needed"
        )
    return sorted(chunks, key=lambda chunk: (chunk.source_id, chunk.position))


def static_examples(fact: dict[str, Any]) -> list[list[Message]]:
    """Each question of a fact with a response, cycling through the responses so each is used."""
    responses = fact["responses"]
    return [
        conversation(question, responses[i % len(responses)]) for i, question in enumerate(fact["questions"])
    ]


def context_examples(
    template: dict[str, Any], corpus: Sequence[Chunk], chunking: ChunkingSettings, rng: random.Random
) -> list[list[Message]]:
    """RAFT "read the context": random fillings of a template, the gold passage among distractors."""
    source_ids = sorted({chunk.source_id for chunk in corpus})
    examples = []
    for values in fillings(template, rng):
        passage, question, response = (
            fill(template[key], values) for key in ("passage", "question", "response")
        )
        heading = " ".join(passage.split()[:TITLE_WORDS]).rstrip(".,;:")
        document = Document.from_text(rng.choice(source_ids), f"## {heading}\n\n{passage}")
        gold = chunk_document(document, chunking)
        distractors = rng.sample(list(corpus), rng.randint(0, MAX_DISTRACTORS))
        # Retrieval usually ranks the right source first, but not always.
        hits = (
            [*gold, *distractors]
            if rng.random() < 0.6
            else rng.sample([*gold, *distractors], k=len(gold) + len(distractors))
        )
        examples.append(conversation(question, response, hits))
    return examples


def ignore_examples(fact: dict[str, Any], corpus: Sequence[Chunk], rng: random.Random) -> list[list[Message]]:
    """RAFT "ignore irrelevant context": static questions asked with unrelated sources in the prompt."""
    responses = fact["responses"]
    picked = rng.sample(range(len(fact["questions"])), QUESTIONS_PER_FACT_WITH_NOISE)
    return [
        conversation(
            fact["questions"][i],
            responses[i % len(responses)],
            rng.sample(list(corpus), rng.randint(1, NOISE_CHUNKS)),
        )
        for i in picked
    ]


def fillings(template: dict[str, Any], rng: random.Random) -> list[dict[str, str]]:
    """Up to `FILLINGS_PER_TEMPLATE` distinct random choices of one value per slot."""
    slots: dict[str, list[str]] = template["slots"]
    chosen: list[dict[str, str]] = []
    # Bounded retries: a template with few combinations simply yields fewer fillings.
    for _ in range(FILLINGS_PER_TEMPLATE * 20):
        values = {name: rng.choice(options) for name, options in sorted(slots.items())}
        if values not in chosen:
            chosen.append(values)
        if len(chosen) == FILLINGS_PER_TEMPLATE:
            break
    return chosen


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with each `{slot}` replaced by its value; an unknown slot is an error in the template."""

    def value(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise KeyError(f"placeholder {{{match[1]}}} has no slot values in {text!r}")
        return values[match[1]]

    return PLACEHOLDER.sub(value, text)


def conversation(question: str, answer: str, chunks: Sequence[Chunk] = ()) -> list[Message]:
    """A user question and its answer, with `chunks` inserted as retrieved sources in the given order."""
    # Scores are not shown in prompts; they only need to be in the best-first order serving uses.
    hits = [Hit(chunk, round(1.0 - 0.1 * rank, 2)) for rank, chunk in enumerate(chunks)]
    messages: list[Message] = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return with_retrieved_context(messages, hits)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m training.demo_data [OUT] [--seed N]`: write the demo dataset and print its stats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEMO_TRAIN_FILE)
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    args = parser.parse_args(argv)
    print(json.dumps(asdict(build_demo_dataset(args.out, args.seed)), indent=2))


if __name__ == "__main__":
    main()
