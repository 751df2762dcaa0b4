"""Networks: the recurrent language model (LSTM or GRU), the harmoniser, mixtures of trained models, losses."""
