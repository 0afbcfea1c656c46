"""Flux-only students that learn the teacher latent (docs/research-plan.md Stages 2, 3 and B)."""
