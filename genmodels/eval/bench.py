"""``python -m genmodels bench``: speed and memory of the shipped models, as ratios measured in one process.

For each shipped checkpoint: the per-token sampling latency at batch 1 (``model.step`` + sampling) against
the bound (the same matrix products, ``torch.mm`` with the model's own weight shapes, timed here) and
against the common reference (``nn.LSTM``/``nn.GRU`` stepped one token at a time); the cost of 4 and 16
candidates; time to first token after a 200-token prompt; end-to-end text and melody generation; training
throughput against a plain loop over the fused cell; the resident memory of a process holding all four.
Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.core.errors import GenmodelsError
from genmodels.infer.decoding import CandidateRandom, Settings, choose
from genmodels.infer.sampling import Sampler
from genmodels.infer.suggest import suggest_latency
from genmodels.io.checkpoint import find_checkpoints, load_checkpoint
from genmodels.learn.optim import bf16_supported
from genmodels.learn.steps import train_step
from genmodels.nn.mixture import members_of
from genmodels.nn.rnn import RNNLanguageModel, embed_dropout_weight, run_recurrent

TARGETS = {
    "step/bound": 1.3,
    "16 cand/1": 3.0,
    "first token ms": 50,
    "400 tokens s": 0.5,
    "64 bars s": 1.0,
    "rss MB": 600,
}


def _median_time(fn, n: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bound_time(model: RNNLanguageModel, batch: int = 1, n: int = 300) -> float:
    """The matrix products one step must do: per layer x·W_ihᵀ and h·W_hhᵀ, then h·W_headᵀ (for a
    mixture, those of every member)."""
    mats = []
    for m in members_of(model):
        for k in range(m.config.layers):
            w_ih = getattr(m.rnn, f"weight_ih_l{k}").detach().t().contiguous()
            w_hh = getattr(m.rnn, f"weight_hh_l{k}").detach().t().contiguous()
            mats += [(torch.randn(batch, w_ih.size(0)), w_ih), (torch.randn(batch, w_hh.size(0)), w_hh)]
        head = m.head.weight.detach().t().contiguous()
        mats.append((torch.randn(batch, head.size(0)), head))

    def products():
        for x, w in mats:
            torch.mm(x, w)

    return _median_time(products, n)


def step_time(model: RNNLanguageModel, batch: int = 1, n: int = 300) -> float:
    """Our sampling step: ``model.step`` plus choosing the next token (one random stream per candidate)."""
    gen = CandidateRandom(0, batch)
    s = Settings(temperature=0.8)  # the app's defaults: top-k and top-p off
    state = model.init_state(batch)
    tok = torch.zeros(batch, dtype=torch.long)
    logits, state = model.step(tok, state)
    box = [logits, state]

    def one():
        t, _ = choose(box[0], s, gen)
        box[0], box[1] = model.step(t, box[1])

    return _median_time(one, n)


def reference_time(model: RNNLanguageModel, n: int = 300) -> float:
    """The common reference: the fused nn.LSTM/nn.GRU called for one token at a time, then the head (for a
    mixture, every member's, then their mixed probabilities)."""
    gen = torch.Generator().manual_seed(0)
    s = Settings(temperature=0.8)  # the app's defaults: top-k and top-p off
    nets = members_of(model)
    box = [torch.zeros(1, dtype=torch.long), [None] * len(nets)]

    @torch.no_grad()
    def one():
        logits = []
        for i, m in enumerate(nets):
            y, box[1][i] = m.rnn(m.embed(box[0])[:, None, :], box[1][i])
            logits.append(m.head(y[:, -1]))
        box[0], _ = choose(model._mix(logits) if len(nets) > 1 else logits[0], s, gen)

    return _median_time(one, n)


def first_token_time(g: Sampler, prompt_tokens: int = 200, n: int = 20) -> float:
    ids = torch.randint(5, g.vocab_size, (1, prompt_tokens))
    gen = torch.Generator().manual_seed(0)

    def one():
        logits, _ = g.model.prefill(ids)
        choose(logits, Settings(), gen)

    return _median_time(one, n, warmup=3)


def train_throughput(
    model: RNNLanguageModel, batch: int = 32, bptt: int = 128, steps: int = 3, precision: str = "fp32"
) -> tuple[float, float]:
    """Tokens/s of genmodels' train_step vs a plain loop over the fused cell of the same size (both under
    bf16 autocast with ``precision="bf16"``)."""

    c = model.config
    x = torch.randint(0, c.vocab_size, (batch, bptt))
    y = torch.randint(0, c.vocab_size, (batch, bptt))
    ours = RNNLanguageModel(c)
    opt = torch.optim.AdamW(ours.parameters(), lr=1e-3)
    ours.train()

    def mine():
        train_step(ours, opt, x, y, None, -100, 1.0, precision)

    rnn = (torch.nn.LSTM if c.cell == "lstm" else torch.nn.GRU)(
        c.emb_dim, c.hidden, c.layers, batch_first=True, dropout=c.dropout if c.layers > 1 else 0.0
    )
    emb, head = torch.nn.Embedding(c.vocab_size, c.emb_dim), torch.nn.Linear(c.hidden, c.vocab_size)
    drop = torch.nn.Dropout(c.dropout)  # the same regularisation, so both loops do the same work
    params = [*rnn.parameters(), *emb.parameters(), *head.parameters()]
    opt2 = torch.optim.AdamW(params, lr=1e-3)

    def plain():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            e = embed_dropout_weight(emb.weight, c.embed_dropout) if c.embed_dropout else emb.weight
            out, _ = run_recurrent(rnn, drop(F.embedding(x, e)), None, c.weight_dropout)  # as the model's own training
            logits = head(drop(out)).reshape(-1, c.vocab_size)
        loss = torch.nn.functional.cross_entropy(logits.float(), y.reshape(-1))
        opt2.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt2.step()

    tokens = batch * bptt
    return tokens / _median_time(mine, steps, warmup=1), tokens / _median_time(plain, steps, warmup=1)


def measure(c, g: Sampler, n: int, quick: bool) -> dict:
    """One row of the table: every figure for checkpoint ``c`` and its sampler ``g``."""
    m = c.model
    b = bound_time(m, 1, n)
    st = step_time(m, 1, n)
    ref = reference_time(m, n)
    s4 = step_time(m, 4, n)
    s16 = step_time(m, 16, n)
    b16 = bound_time(m, 16, n)
    ftt = first_token_time(g)
    e2e = _median_time(lambda: c.domain.end_to_end(g), 3, warmup=1)
    nan = float("nan")
    trained = isinstance(m, RNNLanguageModel)  # a mixture is not trained as a whole: no training figures
    ours_tps, plain_tps = train_throughput(m, steps=2 if quick else 3) if trained else (nan, nan)
    bf16_tps = (
        train_throughput(m, steps=2 if quick else 3, precision="bf16")[0] if trained and bf16_supported() else nan
    )
    return {
        "model": c.name,
        "cell": m.config.cell,
        "H": m.config.hidden,
        "layers": m.config.layers,
        "vocab": m.config.vocab_size,
        "bound_ms": b * 1e3,
        "step_ms": st * 1e3,
        "step/bound": st / b,
        "ref_ms": ref * 1e3,
        "ref/bound": ref / b,
        "4 cand/1": s4 / st,
        "16 cand/1": s16 / st,
        "bound 16/1": b16 / b,
        "first_token_ms": ftt * 1e3,
        "e2e_s": e2e,
        "e2e": c.domain.sample_length,
        "train_tok_s": ours_tps,
        "plain_tok_s": plain_tps,
        "train/plain": ours_tps / plain_tps,
        "train_bf16_tok_s": bf16_tps,
        "bf16/fp32": bf16_tps / ours_tps,
    }


def print_table(rows: list[dict]) -> None:
    hdr = (
        "model",
        "bound ms",
        "step ms",
        "step/bound",
        "nn.* ms",
        "nn.*/bound",
        "4 cand/1",
        "16 cand/1",
        "bound 16/1",
        "1st token ms",
        "end to end",
        "train tok/s",
        "plain tok/s",
        "train/plain",
        "bf16 train tok/s",
        "bf16/fp32",
    )
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print(
            f"| {r['model']} | {r['bound_ms']:.3f} | {r['step_ms']:.3f} | {r['step/bound']:.2f} | "
            f"{r['ref_ms']:.3f} | {r['ref/bound']:.2f} | {r['4 cand/1']:.2f} | {r['16 cand/1']:.2f} | "
            f"{r['bound 16/1']:.2f} | {r['first_token_ms']:.1f} | {r['e2e_s']:.3f} s ({r['e2e']}) | "
            f"{r['train_tok_s']:,.0f} | {r['plain_tok_s']:,.0f} | {r['train/plain']:.2f} | "
            f"{r['train_bf16_tok_s']:,.0f} | {r['bf16/fp32']:.2f} |"
        )
    print(
        f"\nTargets: step/bound <= {TARGETS['step/bound']}, 16 candidates <= {TARGETS['16 cand/1']}x one, "
        f"first token <= {TARGETS['first token ms']} ms after a 200-token prompt, 400 text tokens <= "
        f"{TARGETS['400 tokens s']} s, "
        f"64 bars with audio <= {TARGETS['64 bars s']} s, train/plain >= 1.0 (within noise), all models <= "
        f"{TARGETS['rss MB']} MB resident."
    )


def suggestion_latency(paths: list[str], quick: bool = False) -> dict[str, dict]:
    """Server-side time from a keystroke to the typing view's suggestions (three words + ghost text), typing
    Hamlet's "To be, or not to be" key by key after 2,000 characters of the play (fresh prefix cache)."""

    if not paths:
        return {}
    try:
        rows = suggest_latency(tuple(paths), typed_chars=100 if quick else 400)
    except (OSError, GenmodelsError) as e:  # no corpus here: the typing script needs data/text
        print(f"\nSuggestion latency: not measured ({e})")
        return {}
    print("\nSuggestion latency per keystroke (goal: p95 <= 60 ms)\n")
    print("| model | median ms | p95 ms | max ms | keystrokes |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['keystrokes']} |")
    return rows


def other_models(ckpts: list) -> None:
    """Models that are not one-stream language models (harmony): the end-to-end request only."""
    for c in ckpts:
        g = Sampler(c)
        e2e = _median_time(lambda g=g, c=c: c.domain.end_to_end(g), 3, warmup=1)
        print(f"{c.name}: end to end ({c.domain.sample_length}) {e2e:.2f} s")


def cache_cost(samplers: list[Sampler]) -> list[dict]:
    """End to end with the copies of the tune's own bars (``genmodels.nn.cache``) against the network alone,
    for each model that has cache weights."""
    rows = []
    for g in samplers:
        if g.cache is None:
            continue
        alone = Sampler(g.ckpt, cache=False)
        t_cache = _median_time(lambda g=g: g.domain.end_to_end(g), 7, warmup=1)
        t_alone = _median_time(lambda a=alone: a.domain.end_to_end(a), 7, warmup=1)
        rows.append({"model": g.ckpt.name, "with_cache_s": t_cache, "alone_s": t_alone})
        print(
            f"{g.ckpt.name}: end to end ({g.domain.sample_length}) with the cache {t_cache:.3f} s, network alone "
            f"{t_alone:.3f} s (ratio {t_cache / t_alone:.2f})"
        )
    return rows


def main(quick: bool = False, root: str | Path | None = None) -> list[dict]:
    """Measure every checkpoint under ``root`` (default: the repository's checkpoints/); print a table."""
    n = 100 if quick else 400
    rss0 = _rss_mb()
    paths = find_checkpoints(root)
    if not paths:
        print(f"No checkpoints in {root or 'checkpoints'}/")
        return []
    loaded = [load_checkpoint(p) for p in paths]
    ckpts = [c for c in loaded if c.domain.language_model]
    paths = [c.path for c in ckpts]
    samplers = [Sampler(c) for c in ckpts]
    for g in samplers:  # warm every model once so the memory figure includes the step caches
        g.model.step(torch.zeros(1, dtype=torch.long), g.model.init_state(1))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(ckpts)} models loaded: "
        f"resident memory {_rss_mb():.0f} MB (process before loading: {rss0:.0f} MB; "
        f"target <= {TARGETS['rss MB']} MB)\n"
    )
    rows = [measure(c, g, n, quick) for c, g in zip(ckpts, samplers, strict=False)]
    print_table(rows)
    cache_cost(samplers)
    suggestion_latency([str(p) for p, c in zip(paths, ckpts, strict=True) if c.domain.suggests_words], quick)
    other_models([c for c in loaded if not c.domain.language_model])
    print(f"Peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return rows
