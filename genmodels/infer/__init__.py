"""Using trained models: sampling text and melodies, token healing, stop rules, repetition control, melody
constraints, next-word suggestions, dynamic evaluation and harmonising."""
