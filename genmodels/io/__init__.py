"""Files of trained models: checkpoint folders (safetensors weights, config, tokenizer) and model cards."""
