"""Video memory: decoding, the compressed-stream overview, clip embeddings and their index."""
