"""Flux-only students that learn the teacher latent (research-plan Stages 2, 3 and B)."""
