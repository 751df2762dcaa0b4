"""Tokenizers: text (sentencepiece with byte fallback), melody (events on a 12-ticks-per-quarter grid), harmony."""
