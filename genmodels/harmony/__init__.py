"""Four-part harmony: Bach chorale data, chords, voice leading, the harmoniser models and their exports."""
