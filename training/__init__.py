"""Offline work: dataset generation, features cache, models, training, export, evaluation."""
