"""Vector indexes for embedding recall (exact reference and Faiss ANN)."""
