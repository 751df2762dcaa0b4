"""The harmoniser: a bidirectional recurrent encoder over the soprano and an autoregressive decoder of
the same cell (``nn.LSTM`` or ``nn.GRU``, sized by the shared ``ModelConfig``) over alto, tenor, bass.

The melody is known in advance, so the encoder reads it whole, both ways (half the units each way).
The decoder writes the lower voices as one flattened sequence, step by step (A, T, B at step 0, then
step 1, ...); each input is the previous token + which voice comes next + the encoder's output at the
step being written, so every note is chosen knowing the whole melody and the voices already written.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from genmodels.core.errors import SettingsError
from genmodels.nn.rnn import ModelConfig, State, run_recurrent
from genmodels.tokenizers.harmony import LOW, MODES, POSITIONS


class HarmonyModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        if c.tie_weights:
            raise SettingsError("the harmoniser does not tie its weights: leave out --tie-weights")
        if c.hidden % 2:
            raise SettingsError(f"--hidden {c.hidden}: the harmoniser needs an even number (half each way)")
        if c.embed_dropout:  # its inputs are sums of several embeddings; weight dropout does apply (decoder)
            raise SettingsError("the harmoniser has no embedding dropout: leave out --embed-dropout")
        rnn = nn.LSTM if c.cell == "lstm" else nn.GRU
        between = c.dropout if c.layers > 1 else 0.0
        # encoder: the soprano token and where it falls (bar position, beat strength, fermata, key)
        self.sop_embed = KeyedEmbedding(c.vocab_size, c.emb_dim)
        self.sound_embed = KeyedEmbedding(c.vocab_size, c.emb_dim)  # the soprano pitch sounding (through holds)
        self.pos_embed = nn.Embedding(POSITIONS, c.emb_dim)
        self.strength_embed = nn.Embedding(4, c.emb_dim)
        self.fermata_embed = nn.Embedding(2, c.emb_dim)
        self.tonic_embed = nn.Embedding(12, c.emb_dim)
        self.mode_embed = nn.Embedding(len(MODES) + 1, c.emb_dim)
        self.encoder = rnn(c.emb_dim, c.hidden // 2, c.layers, batch_first=True, bidirectional=True, dropout=between)
        # decoder: previous token + next voice + the encoder at this step
        self.embed = KeyedEmbedding(c.vocab_size, c.emb_dim)
        self.voice_embed = nn.Embedding(3, c.emb_dim)
        self.own_embed = KeyedEmbedding(c.vocab_size, c.emb_dim)  # the pitch the voice written next holds
        self.held_embed = nn.ModuleList(KeyedEmbedding(c.vocab_size, c.emb_dim) for _ in range(3))  # A, T, B
        self.bridge = nn.Linear(c.hidden, c.emb_dim)
        self.rnn = rnn(c.emb_dim, c.hidden, c.layers, batch_first=True, dropout=between)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.vocab_size)
        self.degree_head = nn.Linear(c.hidden, DEGREES)  # a score per degree, added to its pitches' logits
        for e in (self.sop_embed, self.embed):
            nn.init.normal_(e.token.weight, std=0.05)
        if c.cell == "lstm":  # forget-gate bias 1, as RNNLanguageModel
            _forget_bias(self.encoder, c.hidden // 2, c.layers, 2)
            _forget_bias(self.rnn, c.hidden, c.layers, 1)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def prepare_step(self) -> None:
        """Nothing to prepare (the shared Sampler calls this on every model it loads)."""

    def encode(self, feats: dict[str, torch.Tensor], lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Soprano features (B, T) each, key (B, 2) → encoder outputs (B, T, hidden). ``lengths``: of
        padded rows (the backward direction must start at each row's own end)."""
        key = feats["key"]
        tonic = key[:, 0]
        x = (
            self.sop_embed(feats["soprano"], tonic)
            + self.sound_embed(feats["sounding"], tonic)
            + self.pos_embed(feats["position"])
            + self.strength_embed(feats["strength"])
            + self.fermata_embed(feats["fermata"])
            + (self.tonic_embed(key[:, 0]) + self.mode_embed(key[:, 1])).unsqueeze(1)
        )
        x = self.drop(x)
        T = x.size(1)
        if lengths is None or bool((lengths == T).all()):
            return self.encoder(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.encoder(packed)[0], batch_first=True, total_length=T)[0]

    def decoder_input(self, prev, voice, held, enc, tonic) -> torch.Tensor:
        """prev tokens (B, L), voices (B, L), the pitches the three voices hold (B, L, 3; ``held_pitches``),
        encoder outputs at those steps (B, L, hidden), tonics (B,)."""
        own = held.gather(-1, voice.unsqueeze(-1)).squeeze(-1)
        x = self.embed(prev, tonic) + self.voice_embed(voice) + self.own_embed(own, tonic) + self.bridge(enc)
        for j, e in enumerate(self.held_embed):
            x = x + e(held[..., j], tonic)
        return self.drop(x)

    def logits(self, y: torch.Tensor, tonic: torch.Tensor) -> torch.Tensor:
        """Decoder outputs (B, ..., hidden) → logits (B, ..., V): each token's own score plus its degree's."""
        vocab = torch.arange(self.config.vocab_size, device=y.device)
        deg = degrees(vocab.expand(tonic.size(0), -1), tonic)  # (B, V)
        index = deg.view(deg.size(0), *([1] * (y.dim() - 2)), -1).expand(*y.shape[:-1], -1)
        return self.head(y) + self.degree_head(y).gather(-1, index)

    def forward(
        self,
        feats: dict[str, torch.Tensor],
        prev: torch.Tensor,
        held: torch.Tensor,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits (B, 3T, V) for the flattened lower voices whose inputs are ``prev``
        (BOS, then the targets shifted by one) and ``held`` (``tokens.held_pitches`` of the targets)."""
        enc = self.encode(feats, lengths)
        L = prev.size(1)
        voice = (torch.arange(L, device=prev.device) % 3).expand(prev.size(0), -1)
        tonic = feats["key"][:, 0]
        x = self.decoder_input(prev, voice, held, enc.repeat_interleave(3, dim=1)[:, :L], tonic)
        y, _ = run_recurrent(self.rnn, x, None, self.config.weight_dropout)
        return self.logits(self.drop(y), tonic)

    @torch.no_grad()
    def step(self, prev, voice: int, held, enc_t, tonic, state: State | None):
        """One decoder step: prev tokens (B,), the voice written next (0 alto, 1 tenor, 2 bass), the pitch
        three voices hold (B, 3), the encoder outputs at this grid step (B, hidden), tonics (B,) → logits (B, V) and
        the new state."""
        v = torch.full_like(prev, voice)
        x = self.decoder_input(prev, v, held, enc_t, tonic)
        y, state = cell_step(self.rnn, self.config.cell, x, state)
        return self.logits(y, tonic), state


DEGREES = 13  # the pitch's degree above the tonic, 0..11; 12 for HOLD, REST and the specials


def degrees(tokens: torch.Tensor, tonic: torch.Tensor) -> torch.Tensor:
    """Each token's degree above the tonic of its row (``tonic`` (B,)); 12 for non-pitch tokens."""
    t = tonic.view(-1, *([1] * (tokens.dim() - 1)))
    return torch.where(tokens >= 4, (tokens - 4 + LOW - t) % 12, DEGREES - 1)


class KeyedEmbedding(nn.Module):
    """A token's embedding plus one of its degree in the key: what a pitch means in its key is learned
    once for all twelve keys, which the transposed copies of the corpus would otherwise teach twelve times."""

    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.token = nn.Embedding(vocab, dim)
        self.degree = nn.Embedding(DEGREES, dim)

    def forward(self, tokens: torch.Tensor, tonic: torch.Tensor) -> torch.Tensor:
        return self.token(tokens) + self.degree(degrees(tokens, tonic))


def _forget_bias(rnn: nn.Module, hidden: int, layers: int, directions: int) -> None:
    suffixes = ["", "_reverse"][:directions]
    with torch.no_grad():
        for k in range(layers):
            for s in suffixes:
                getattr(rnn, f"bias_ih_l{k}{s}")[hidden : 2 * hidden].fill_(1.0)
                getattr(rnn, f"bias_hh_l{k}{s}")[hidden : 2 * hidden].fill_(0.0)


def cell_step(rnn: nn.Module, cell: str, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
    """One time step of a unidirectional ``nn.LSTM``/``nn.GRU`` on inputs (B, in), computed from its
    weights: one call of the fused module per step costs milliseconds of overhead, this a few ``addmm``s.
    Returns the top layer's output (B, H) and the new state, as the module would."""
    layers, lstm = rnn.num_layers, cell == "lstm"
    if state is None:
        z = x.new_zeros(layers, x.size(0), rnn.hidden_size)
        state = (z, z.clone()) if lstm else z
    hs, cs = (state[0], state[1]) if lstm else (state, None)
    new_h, new_c = [], []
    for k in range(layers):
        gi = torch.addmm(getattr(rnn, f"bias_ih_l{k}"), x, getattr(rnn, f"weight_ih_l{k}").t())
        gh = torch.addmm(getattr(rnn, f"bias_hh_l{k}"), hs[k], getattr(rnn, f"weight_hh_l{k}").t())
        if lstm:
            i, f, g, o = (gi + gh).chunk(4, 1)
            c = torch.sigmoid(f) * cs[k] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(c)
            new_c.append(c)
        else:
            ir, iz, i_n = gi.chunk(3, 1)
            hr, hz, h_n = gh.chunk(3, 1)
            r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
            n = torch.tanh(i_n + r * h_n)
            x = n + z * (hs[k] - n)
        new_h.append(x)
    h = torch.stack(new_h)
    return x, ((h, torch.stack(new_c)) if lstm else h)
