"""Learning: the corpora (text, melody, chorales), token streams and batches, the trainer and the harmony trainer."""
