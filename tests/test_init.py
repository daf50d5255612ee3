"""The front door: `import hardneg` gives the pipeline and its records."""

from __future__ import annotations

import hardneg


def test_the_pipeline_is_reexported_at_the_top() -> None:
    for name in ("mine", "judge", "relabel", "clean", "train_retriever", "train_reranker", "evaluate"):
        assert callable(getattr(hardneg, name)), name
    for name in ("Instance", "Passage", "FinalVerdict", "JudgeOutput", "CascadeConfig", "JudgmentStore"):
        assert isinstance(getattr(hardneg, name), type), name
    assert set(hardneg.__all__) <= set(dir(hardneg))
    assert hardneg.__version__


def test_the_verbs_take_the_store_in_the_same_place() -> None:
    import inspect

    for verb in (hardneg.judge, hardneg.clean):
        names = list(inspect.signature(verb).parameters)
        assert names[:3] == ["data", "config", "store"], verb.__name__
    for name in ("PartialCascade", "JudgeStopped", "load_cascade", "EvalResult", "TrainResult"):
        assert name in hardneg.__all__, name
