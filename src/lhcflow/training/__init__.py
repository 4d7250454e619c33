"""Training of generative networks: balanced batches, one-cycle schedule, resumable checkpoints."""
