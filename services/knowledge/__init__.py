"""Knowledge service: labels, chunks, embeddings, vector and hybrid search."""
