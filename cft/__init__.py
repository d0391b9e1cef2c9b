"""cft: continual fine-tuning with PROTEUS and parameter-free task retrieval."""

__version__ = "0.2.0"
