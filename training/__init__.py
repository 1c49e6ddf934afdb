"""Training the controller (SFT, GRPO) and the embedder (contrastive fine-tuning)."""
