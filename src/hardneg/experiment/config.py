"""The experiment config: one YAML file from training data to a results table.

```yaml
name: scifact-rlhn                 # optional, default: the file's stem
output: runs/scifact-rlhn          # experiment folder (relative paths are relative to this file)
seeds: [0]                         # one model per variant and seed
engine: local                      # or ray: mining and judging on Ray (RAY_ADDRESS, ray_address:, else a local
                                   # Ray); the results, and so every cached step, are the same on both
train:                             # training sources; each becomes one `subset`
  - name: scifact
    beir: ../shared/data/scifact   # a BEIR folder to mine from ...
    split: train
    max_queries: 200               # optional: the first N queries (sorted ids) only
  # - name: fiqa
  #   file: fiqa.jsonl.gz          # ... or a ready Tevatron file (mining is skipped)
mine: {method: bm25, negatives: 20}  # options of `hardneg.mine` (BEIR sources only)
judge: {config: cascade.yaml}      # a cascade YAML (`hardneg judge`), or inline `stages: [...]`
variants: [default, remove, hn_remove, rlhn, topk_percpos, ce_distill]
verdicts: [stage1, cascade]        # relabel from stage 1's verdicts alone and from the whole cascade
relabel: {}                        # options of `hardneg.relabeling.RelabelOptions`
topk_percpos:                      # NV-Retriever: drop negatives scoring above margin x the positive's score ...
  margin: 0.95
  teacher: "dense:"                # ... under this teacher: dense:[MODEL] (default: the embedded MiniLM),
                                   # cross-encoder:DIR, cross-encoder:train, or mining (the mining scores)
ce_distill:                        # train the retriever on a cross-encoder's scores (MarginMSE or KL)
  teacher: cross-encoder:train     # cross-encoder:DIR, or cross-encoder:train (trained here, `reranker:`)
  loss: margin_mse                 # or kl_div
reranker: {epochs: 1, negatives: 7}  # `hardneg train reranker` options of a teacher trained here
training: {epochs: 1, batch_size: 16, max_length: 128}   # options of `hardneg.train`
evaluate:                          # test sets
  - name: scifact
    beir: ../shared/data/scifact
    split: test
    max_queries: 100               # optional
evaluation: {metric: ndcg@10, alpha: 0.05}
prune: {threshold: 0.005}          # `hardneg prune` only
```

Every error names the config file, the line and the dotted field (`variants[2]`, `evaluate[0].beir`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.cluster import resolve_engine
from hardneg.errors import ConfigError, InputError
from hardneg.training.teacher import parse_teacher

TREATMENTS = ("default", "remove", "hn_remove", "rlhn")
BASELINES = ("topk_percpos", "ce_distill")
# A baseline's teacher cross-encoder trained by the experiment itself, from the mined data (`reranker:` options).
TRAINED_TEACHER = "cross-encoder:train"
# TopK-PercPos on the scores mining saved (what hardneg did before teachers could be named).
MINING_TEACHER = "mining"
DISTILL_LOSSES = ("margin_mse", "kl_div")
BASELINE_OPTIONS = {
    "topk_percpos": {"margin", "teacher", "batch_size", "max_length", "backend"},
    "ce_distill": {"teacher", "loss", "batch_size", "max_length", "backend"},
}
VARIANT_NAMES = TREATMENTS + BASELINES
VERDICT_SOURCES = ("stage1", "cascade")
TOP_KEYS = {
    "name",
    "engine",
    "ray_address",
    "output",
    "seeds",
    "train",
    "mine",
    "judge",
    "variants",
    "verdicts",
    "relabel",
    "topk_percpos",
    "ce_distill",
    "reranker",
    "training",
    "evaluate",
    "evaluation",
    "prune",
}


@dataclass
class DataSource:
    """A training source (one subset) or a test set."""

    name: str
    beir: Path | None = None
    file: Path | None = None
    split: str = "train"
    max_queries: int | None = None


@dataclass
class Variant:
    """One training set to compare: a treatment applied with one verdict source, or a baseline."""

    name: str  # unique label: "default", "rlhn-stage1", "rlhn-cascade", "topk_percpos"
    treatment: str  # default / remove / hn_remove / rlhn / topk_percpos
    verdicts: str | None = None  # stage1 / cascade (None for default and baselines)


@dataclass
class ExperimentConfig:
    path: Path
    name: str
    output: Path
    seeds: list[int]
    train: list[DataSource]
    evaluate: list[DataSource]
    variants: list[Variant]
    verdicts: list[str]
    mine: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    relabel: dict[str, Any] = field(default_factory=dict)
    topk_percpos: dict[str, Any] = field(default_factory=dict)
    ce_distill: dict[str, Any] = field(default_factory=dict)
    reranker: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    prune: dict[str, Any] = field(default_factory=dict)
    # where mining and judging run (`hardneg.cluster`): never part of a step's cache key, since both engines
    # give the same results
    engine: str = "local"
    ray_address: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_judge(self) -> bool:
        return any(v.verdicts is not None for v in self.variants)

    @property
    def metric(self) -> str:
        return str(self.evaluation.get("metric", "ndcg@10"))

    @property
    def alpha(self) -> float:
        return float(self.evaluation.get("alpha", 0.05))


class _Lines:
    """Line numbers of every dotted field in a YAML document, for error messages."""

    def __init__(self, text: str) -> None:
        import yaml

        self.lines: dict[str, int] = {}
        try:
            node = yaml.compose(text)
        except yaml.YAMLError:
            return
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: Any, prefix: str) -> None:
        import yaml

        self.lines.setdefault(prefix, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = f"{prefix}.{key.value}" if prefix else str(key.value)
                self.lines[name] = key.start_mark.line + 1
                self._walk(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{prefix}[{index}]")

    def line(self, dotted: str) -> int | None:
        # Fall back to the nearest enclosing field that exists (a missing key is reported at its parent).
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            cut = max(dotted.rfind("."), dotted.rfind("["))
            dotted = dotted[:cut] if cut > 0 else ""
        return None


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = _Lines(text)

    def error(self, dotted: str, message: str) -> InputError:
        return InputError(self.path, self.lines.line(dotted), dotted, message)

    def mapping(self, value: Any, dotted: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(dotted, f"expected a mapping, got {type(value).__name__}")
        return dict(value)

    def path_of(self, value: Any, dotted: str, *, must_be_dir: bool = False) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise self.error(dotted, "expected a path")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = (self.path.parent / path).resolve()
        if not path.exists():
            raise self.error(dotted, f"no such {'folder' if must_be_dir else 'file'}: {path}")
        if must_be_dir and not path.is_dir():
            raise self.error(dotted, f"not a folder: {path}")
        return path

    def source(self, item: Any, dotted: str, *, default_split: str, allow_file: bool) -> DataSource:
        if not isinstance(item, dict):
            raise self.error(dotted, "expected a mapping with `name` and `beir` (or `file`)")
        known = {"name", "beir", "file", "split", "max_queries"}
        unknown = sorted(set(item) - known)
        if unknown:
            raise self.error(f"{dotted}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(known))})")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.error(f"{dotted}.name", "missing: every dataset needs a name")
        if ("beir" in item) == ("file" in item):
            what = "`beir` (a BEIR folder) or `file` (a Tevatron file)" if allow_file else "`beir` (a BEIR folder)"
            raise self.error(dotted, f"dataset {name!r}: give exactly one of {what}")
        if "file" in item and not allow_file:
            raise self.error(f"{dotted}.file", "test sets must be BEIR folders (`beir:`)")
        split = item.get("split", default_split)
        if not isinstance(split, str) or not split:
            raise self.error(f"{dotted}.split", "expected a split name such as train or test")
        max_queries = item.get("max_queries")
        if max_queries is not None and (not isinstance(max_queries, int) or max_queries < 1):
            raise self.error(f"{dotted}.max_queries", "expected a positive integer")
        source = DataSource(name=name.strip(), split=split, max_queries=max_queries)
        if "beir" in item:
            source.beir = self.path_of(item["beir"], f"{dotted}.beir", must_be_dir=True)
            qrels = source.beir / "qrels" / f"{split}.tsv"
            if not qrels.is_file():
                raise self.error(f"{dotted}.split", f"no qrels for split {split!r}: {qrels} does not exist")
        else:
            source.file = self.path_of(item["file"], f"{dotted}.file")
        return source

    def sources(self, value: Any, dotted: str, *, default_split: str, allow_file: bool) -> list[DataSource]:
        if value is None or value == []:
            raise self.error(dotted, "missing: at least one dataset is required")
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise self.error(dotted, "expected a list of datasets")
        out = [
            self.source(item, f"{dotted}[{i}]", default_split=default_split, allow_file=allow_file)
            for i, item in enumerate(value)
        ]
        seen: set[str] = set()
        for i, source in enumerate(out):
            if source.name in seen:
                raise self.error(f"{dotted}[{i}].name", f"duplicate dataset name {source.name!r}")
            seen.add(source.name)
        return out


def _variants(reader: _Reader, raw: Any, verdicts: list[str]) -> list[Variant]:
    if raw is None:
        raw = ["default", "rlhn"]
    if not isinstance(raw, list) or not raw:
        raise reader.error("variants", "expected a non-empty list of variant names")
    out: list[Variant] = []
    for i, name in enumerate(raw):
        if name not in VARIANT_NAMES:
            raise reader.error(f"variants[{i}]", f"unknown variant {name!r} (known: {', '.join(VARIANT_NAMES)})")
        if name == "default" or name in BASELINES:
            out.append(Variant(name=name, treatment=name))
        else:
            out.extend(Variant(name=f"{name}-{source}", treatment=name, verdicts=source) for source in verdicts)
    if not any(v.name == "default" for v in out):
        # Every delta and significance test is against `default`: it is always trained.
        out.insert(0, Variant(name="default", treatment="default"))
    names = [v.name for v in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise reader.error("variants", f"variant listed twice: {duplicates[0]}")
    return out


def _teacher(reader: _Reader, value: Any, dotted: str, baseline: str) -> str:
    """A baseline's teacher spec, checked, with folder paths made absolute (relative to the config file)."""
    if not isinstance(value, str):
        raise reader.error(dotted, "expected a teacher: dense:[MODEL], cross-encoder:DIR or cross-encoder:train")
    text = value.strip()
    if text == TRAINED_TEACHER:
        return text
    if text == MINING_TEACHER and baseline == "topk_percpos":
        return text
    try:
        teacher = parse_teacher(text, param="teacher")
    except ConfigError as exc:
        raise reader.error(dotted, f"{exc.detail}, or cross-encoder:train") from None
    if teacher.kind == "cross-encoder":
        assert teacher.model is not None
        return f"cross-encoder:{reader.path_of(teacher.model, dotted, must_be_dir=True)}"
    if teacher.model is not None:
        local = Path(teacher.model).expanduser()
        if not local.is_absolute() and (reader.path.parent / local).exists():
            local = (reader.path.parent / local).resolve()
        return f"dense:{local if local.exists() else teacher.model}"
    return "dense:"


def load_config(
    path: str | Path, *, overrides: dict[str, Any] | None = None, require_judge: bool = True
) -> ExperimentConfig:
    """Read and check an experiment config; raise InputError naming the file, line and field.

    `require_judge=False` (the pruning study) accepts a config without a `judge` section.
    """
    import yaml

    path = Path(path).resolve()
    if not path.is_file():
        raise InputError(path, None, "-", "no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        detail = f"not a YAML text file (not UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        raise InputError(path, None, "-", detail) from None
    reader = _Reader(path, text)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(path, mark.line + 1 if mark else None, "-", f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(path, None, "-", "expected a YAML mapping at the top level")
    raw = copy.deepcopy(raw)
    for key, value in (overrides or {}).items():
        raw[key] = value
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise reader.error(unknown[0], f"unknown field (known: {', '.join(sorted(TOP_KEYS))})")

    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise reader.error("name", "expected a non-empty string")
    output_raw = raw.get("output", f"{path.stem}.experiment")
    if not isinstance(output_raw, str) or not output_raw.strip():
        raise reader.error("output", "expected a folder path")
    output = Path(output_raw).expanduser()
    if not output.is_absolute():
        output = (path.parent / output).resolve()

    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise reader.error("seeds", "expected a non-empty list of integers, e.g. [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise reader.error("seeds", "a seed is listed twice")

    engine = raw.get("engine", "local")
    ray_address = raw.get("ray_address")
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
        raise reader.error("ray_address", "expected a Ray cluster address, e.g. HEAD_IP:6379")
    try:
        resolve_engine(engine, ray_address)
    except ConfigError as exc:
        raise reader.error(exc.param or "engine", exc.detail) from None

    train = reader.sources(raw.get("train"), "train", default_split="train", allow_file=True)
    evaluate = reader.sources(raw.get("evaluate"), "evaluate", default_split="test", allow_file=False)

    verdicts = raw.get("verdicts", ["cascade"])
    if isinstance(verdicts, str):
        verdicts = [verdicts]
    if not isinstance(verdicts, list) or not verdicts:
        raise reader.error("verdicts", f"expected a list drawn from {', '.join(VERDICT_SOURCES)}")
    for i, source in enumerate(verdicts):
        if source not in VERDICT_SOURCES:
            raise reader.error(f"verdicts[{i}]", f"unknown verdict source {source!r} (known: stage1, cascade)")
    variants = _variants(reader, raw.get("variants"), list(dict.fromkeys(verdicts)))

    sections = {
        key: reader.mapping(raw.get(key), key)
        for key in (
            "mine", "judge", "relabel", "topk_percpos", "ce_distill", "reranker", "training", "evaluation", "prune"
        )
    }  # fmt: skip
    judge = sections["judge"]
    needs_judge = any(v.verdicts is not None for v in variants)
    if needs_judge and (require_judge or judge):
        if "config" in judge:
            judge["config"] = str(reader.path_of(judge["config"], "judge.config"))
        elif "stages" not in judge:
            raise reader.error(
                "judge", "missing: variants that relabel need `judge: {config: cascade.yaml}` or inline `stages`"
            )
    listed = {v.treatment for v in variants}
    for baseline, known in BASELINE_OPTIONS.items():
        section = sections[baseline]
        unknown = sorted(set(section) - known)
        if unknown:
            raise reader.error(f"{baseline}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(known))})")
        if baseline not in listed:
            continue
        default = "dense:" if baseline == "topk_percpos" else TRAINED_TEACHER
        section["teacher"] = _teacher(reader, section.get("teacher", default), f"{baseline}.teacher", baseline)
        for option in ("batch_size", "max_length"):
            value = section.get(option)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise reader.error(f"{baseline}.{option}", "expected a positive integer")
        backend = section.get("backend", "auto")
        if backend not in ("auto", "torch", "onnx"):
            raise reader.error(f"{baseline}.backend", "expected auto, torch or onnx")
    if "topk_percpos" in listed:
        margin = sections["topk_percpos"].get("margin", 0.95)
        if not isinstance(margin, (int, float)) or not 0 < margin <= 1.5:
            raise reader.error("topk_percpos.margin", "expected a number such as 0.95")
    if "ce_distill" in listed:
        loss = sections["ce_distill"].get("loss", "margin_mse")
        if loss not in DISTILL_LOSSES:
            raise reader.error("ce_distill.loss", f"expected one of {', '.join(DISTILL_LOSSES)}")
        if sections["ce_distill"]["teacher"].startswith("dense:"):
            raise reader.error("ce_distill.teacher", "ce_distill distils a cross-encoder: cross-encoder:DIR or train")
    alpha = sections["evaluation"].get("alpha", 0.05)
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise reader.error("evaluation.alpha", "expected a number between 0 and 1")
    threshold = sections["prune"].get("threshold", 0.005)
    if not isinstance(threshold, (int, float)) or threshold < 0:
        raise reader.error("prune.threshold", "expected a non-negative number (nDCG points, e.g. 0.005)")

    return ExperimentConfig(
        path=path,
        name=name.strip(),
        output=output,
        seeds=list(seeds),
        train=train,
        evaluate=evaluate,
        variants=variants,
        verdicts=list(dict.fromkeys(verdicts)),
        engine=str(engine),
        ray_address=ray_address,
        raw=raw,
        **sections,
    )
