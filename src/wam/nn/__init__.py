"""Neural network building blocks: the frame tokenizer, image metrics, and (later) the transformer."""
