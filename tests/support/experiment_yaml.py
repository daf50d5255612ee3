"""Experiment YAML over the shipped sample (`hardneg.data.sample`): trained on its train split, evaluated on its
test split, with the sections in between given by the test."""

from __future__ import annotations

from pathlib import Path

from hardneg.data.sample import sample_beir_dir


def sample_experiment(body: str, *, name: str = "exp") -> str:
    """The YAML text: `body` (mine, variants, judge, training, ...) between the `train` and `evaluate` sections."""
    beir = sample_beir_dir()
    source = "  - name: sample\n    beir: {beir}\n    split: {split}\n"
    return (
        f"name: {name}\noutput: exp\ntrain:\n{source.format(beir=beir, split='train')}{body.rstrip()}\n"
        f"evaluate:\n{source.format(beir=beir, split='test')}"
    )


def write_yaml(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path
