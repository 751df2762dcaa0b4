"""One recurrent language model for both domains: ``RNNLanguageModel(cell="lstm"|"gru")``.

Training runs the fused ``nn.LSTM``/``nn.GRU`` over whole sequences (``forward``). Sampling runs one
token at a time (``step``): there ``nn.LSTM`` spends most of its time in per-call overhead, so the step
path does the cell arithmetic itself on weights prepared once per version of the weights
(``prepare_step``, rebuilt after ``load_state_dict`` or any in-place update): the first layer's
input products are a lookup table (embedding × W_ih + biases), every other layer is one ``addmm`` per
weight matrix plus a handful of element-wise ops. ``step`` and ``forward`` agree to float precision.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from genmodels.core.errors import SettingsError
from genmodels.core.options import option

CELLS = ("lstm", "gru")
# Settings that change only training, not what the weights mean: a run may start from weights trained with others.
REGULARISERS = ("dropout", "weight_dropout", "embed_dropout")
# Module level, not per model: a model is deep-copied (dynamic evaluation) and a lock cannot be copied.
_STEP_CACHE_LOCK = threading.Lock()


@dataclass
class ModelConfig:
    vocab_size: int = option(
        2048,
        "vocabulary size: text trains its tokenizer to about this many pieces "
        "(the model takes the tokenizer's size; melody's vocabulary is fixed)",
    )
    cell: str = option("lstm", "recurrent cell", choices=CELLS)
    emb_dim: int = option(256, "token embedding size")
    hidden: int = option(512, "units per recurrent layer")
    layers: int = option(2, "recurrent layers")
    dropout: float = option(0.2, "dropout on embeddings, between layers and before the output layer")
    weight_dropout: float = option(
        0.0,
        "DropConnect on the recurrent (hidden-to-hidden) weights while training: one mask per update "
        "(Merity et al. 2018, AWD-LSTM)",
    )
    embed_dropout: float = option(
        0.0, "while training, drop whole token embeddings (every occurrence of a token in an update)"
    )
    tie_weights: bool = option(False, "share the embedding and output matrices (needs --emb-dim equal to --hidden)")

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise SettingsError(f"cell must be one of {CELLS}, not {self.cell!r}")
        if self.tie_weights and self.emb_dim != self.hidden:
            raise SettingsError("tied weights need emb_dim == hidden")
        if min(self.vocab_size, self.emb_dim, self.hidden, self.layers) < 1:
            raise SettingsError(f"invalid model size: {self}")
        for name in REGULARISERS:
            if not 0 <= getattr(self, name) < 1:  # also false for nan
                raise SettingsError(f"--{name.replace('_', '-')} {getattr(self, name)}: a rate in [0, 1) is needed")

    def to_dict(self) -> dict:
        return asdict(self)


# A recurrent state: LSTM (h, c) each (layers, B, H); GRU h (layers, B, H).
State = tuple[torch.Tensor, ...] | torch.Tensor


def run_recurrent(rnn: nn.RNNBase, x, state, weight_dropout: float):
    """``rnn(x, state)``; while training with ``weight_dropout`` > 0 the hidden-to-hidden matrices are
    dropped out (DropConnect: the same mask at every time step and row of the batch, a new one per call),
    through ``functional_call`` so that the parameters themselves never change."""
    if not (rnn.training and weight_dropout > 0):
        return rnn(x, state)
    hh = [name for name in rnn._flat_weights_names if name.startswith("weight_hh")]
    return functional_call(rnn, {name: _drop_connect(getattr(rnn, name), weight_dropout) for name in hh}, (x, state))


def _drop_connect(w: torch.Tensor, p: float) -> torch.Tensor:
    # rand_like + compare draws the mask 3x faster than bernoulli_ (F.dropout) on this CPU. Cast to the
    # autocast type here, once: autocast caches casts of parameters only, so it would cast this non-leaf
    # tensor again at every time step of the recurrence.
    w = w * ((torch.rand_like(w) >= p).to(w.dtype) / (1 - p))
    return w.to(torch.get_autocast_dtype(w.device.type)) if torch.is_autocast_enabled(w.device.type) else w


def embed_dropout_weight(weight: torch.Tensor, p: float) -> torch.Tensor:
    """The embedding matrix with whole rows (tokens) zeroed at rate ``p``, the rest scaled by 1/(1-p)."""
    mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
    return weight * mask


class RNNLanguageModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.emb_dim)
        self.drop = nn.Dropout(c.dropout)
        rnn = nn.LSTM if c.cell == "lstm" else nn.GRU
        self.rnn = rnn(c.emb_dim, c.hidden, c.layers, batch_first=True, dropout=c.dropout if c.layers > 1 else 0.0)
        self.head = nn.Linear(c.hidden, c.vocab_size)
        if c.tie_weights:
            self.head.weight = self.embed.weight
        self._step_cache: dict | None = None
        self.register_load_state_dict_post_hook(RNNLanguageModel._after_load)
        nn.init.normal_(self.embed.weight, std=0.05)
        if c.cell == "lstm":  # forget-gate bias 1: remember by default early in training (Jozefowicz et al. 2015)
            with torch.no_grad():
                for k in range(c.layers):
                    getattr(self.rnn, f"bias_ih_l{k}")[c.hidden : 2 * c.hidden].fill_(1.0)
                    getattr(self.rnn, f"bias_hh_l{k}")[c.hidden : 2 * c.hidden].fill_(0.0)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def init_state(self, batch: int = 1) -> State:
        c = self.config
        z = torch.zeros(c.layers, batch, c.hidden)
        return (z, z.clone()) if c.cell == "lstm" else z

    def forward(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """tokens (B, T) → logits (B, T, V) and the state after the last token."""
        c = self.config
        if self.training and c.embed_dropout > 0:
            x = F.embedding(tokens, embed_dropout_weight(self.embed.weight, c.embed_dropout))
        else:
            x = self.embed(tokens)
        y, state = run_recurrent(self.rnn, self.drop(x), state, c.weight_dropout)
        return self.head(self.drop(y)), state

    def train(self, mode: bool = True):  # weights may change: drop the step path's prepared copies
        self._step_cache = None
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):  # .to(), .float(), .half() replace the tensors' data
        self._step_cache = None
        return super()._apply(fn, *args, **kwargs)

    @staticmethod
    def _after_load(module: RNNLanguageModel, incompatible_keys) -> None:
        module._step_cache = None  # load_state_dict(assign=True) replaces the parameters themselves

    # fast single-step path -----------------------------------------------------------------
    def prepare_step(self) -> dict:
        """Weights rearranged for ``step``: built once, rebuilt whenever the weights have changed since.

        A change is an in-place update of a parameter (``load_state_dict``, an optimiser step, any
        ``p.add_()``: each bumps the parameter's version counter, checked on every call), a call of
        ``load_state_dict``, ``train()`` or ``.to()``/``.float()``."""
        cache = self._step_cache
        if cache is not None and tuple(p._version for p in cache["params"]) == cache["versions"]:
            return cache
        with _STEP_CACHE_LOCK:  # one build when several sessions' first requests arrive together
            cache = self._step_cache
            if cache is not None and tuple(p._version for p in cache["params"]) == cache["versions"]:
                return cache
            return self._build_step_cache()

    @torch.no_grad()
    def _build_step_cache(self) -> dict:
        c, H = self.config, self.config.hidden
        layers = []
        for k in range(c.layers):
            w_ih = getattr(self.rnn, f"weight_ih_l{k}").detach().float()
            w_hh = getattr(self.rnn, f"weight_hh_l{k}").detach().float()
            b_ih = getattr(self.rnn, f"bias_ih_l{k}").detach().float()
            b_hh = getattr(self.rnn, f"bias_hh_l{k}").detach().float()
            if c.cell == "lstm":
                # PyTorch gate order (i, f, g, o) → (i, f, o, g): one sigmoid over 3H, one tanh over H.
                perm = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
                w_ih, w_hh, b = w_ih[perm], w_hh[perm], (b_ih + b_hh)[perm]
                layers.append({"w_ih_t": w_ih.t().contiguous(), "w_hh_t": w_hh.t().contiguous(), "b": b})
            else:
                layers.append(
                    {"w_ih_t": w_ih.t().contiguous(), "w_hh_t": w_hh.t().contiguous(), "b_ih": b_ih, "b_hh": b_hh}
                )
        # First layer: input products for every token at once, a (V, G) table.
        emb = self.embed.weight.detach().float()
        first = layers[0]
        bias0 = first["b"] if c.cell == "lstm" else first["b_ih"]
        first["table"] = torch.addmm(bias0, emb, first["w_ih_t"])
        params = list(self.parameters())
        self._step_cache = {
            "params": params,
            "versions": tuple(p._version for p in params),
            "layers": layers,
            "head_w_t": self.head.weight.detach().float().t().contiguous(),
            "head_b": self.head.bias.detach().float(),
        }
        return self._step_cache

    @torch.no_grad()
    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One token per row, tokens (B,) → logits (B, V) and the new state. Eval mode only."""
        p = self.prepare_step()
        H = self.config.hidden
        lstm = self.config.cell == "lstm"
        hs, cs = (state[0], state[1]) if lstm else (state, None)
        new_h, new_c = [], []
        x = None
        for k, L in enumerate(p["layers"]):
            h = hs[k]
            if lstm:
                gates = L["table"].index_select(0, token) if k == 0 else torch.addmm(L["b"], x, L["w_ih_t"])
                gates.addmm_(h, L["w_hh_t"])
                sig = torch.sigmoid(gates[:, : 3 * H])
                g = torch.tanh(gates[:, 3 * H :])
                c = torch.addcmul(sig[:, :H] * g, sig[:, H : 2 * H], cs[k])
                h = sig[:, 2 * H :] * torch.tanh(c)
                new_c.append(c)
            else:
                gi = L["table"].index_select(0, token) if k == 0 else torch.addmm(L["b_ih"], x, L["w_ih_t"])
                gh = torch.addmm(L["b_hh"], h, L["w_hh_t"])
                rz = torch.sigmoid(gi[:, : 2 * H] + gh[:, : 2 * H])
                n = torch.tanh(torch.addcmul(gi[:, 2 * H :], rz[:, :H], gh[:, 2 * H :]))
                h = torch.addcmul(n, rz[:, H:], h - n)
            new_h.append(h)
            x = h
        logits = torch.addmm(p["head_b"], x, p["head_w_t"])
        hs_t = torch.stack(new_h)
        return logits, ((hs_t, torch.stack(new_c)) if lstm else hs_t)

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Run a whole seed (B, T) in one fused call; return the last position's logits (B, V)."""
        logits, state = self.forward(tokens, state)
        return logits[:, -1], state


def expand_state(state: State, batch: int) -> State:
    """Repeat a batch-1 state for ``batch`` candidates."""
    if isinstance(state, tuple):
        return tuple(s.repeat(1, batch, 1) for s in state)
    return state.repeat(1, batch, 1)


def detach_state(state: State) -> State:
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()
