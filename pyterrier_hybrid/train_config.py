"""Every option of a training run, defined once: defaults, validation, JSON and "same run?".

:class:`TrainConfig` is what :func:`~pyterrier_hybrid.train` runs with, what ``train_config.json``
records under ``options``, what the CLI builds from its flags and what experiments compare to reuse
a finished model or resume an interrupted one. The model and the data source are not options:
they are the two arguments of ``train``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["BATCH_MIXES", "KEEP", "NEGATIVE_LANGUAGES", "OPTIMIZERS", "PRECISIONS", "SAMPLINGS", "STRATEGIES",
           "Strategy", "TrainConfig", "card_lines", "describe_differences", "parse_language_weights", "parse_run_name",
           "resolve_alpha", "resolve_precision", "strategy_for_alpha"]

#: The alpha of ``hybrid`` sampling when none is given.
DEFAULT_ALPHA = 0.5


@dataclass(frozen=True)
class Strategy:
    """A training strategy (``TrainConfig.sampling``): its batch sampler and alpha, the probability
    of a monolingual batch (fixed, or ``None``: the run's ``alpha``), and how cards and tables name it.

    Training builds ``sampler.SAMPLERS[strategy.sampler]``; the sweep names its runs with
    :meth:`run_name` and the statistics read them back with :func:`parse_run_name`, the model card
    describes a run with :meth:`describe`. A new strategy is one more entry of :data:`STRATEGIES`
    (and, for a new batch schedule, of ``sampler.SAMPLERS``).
    """

    name: str
    alpha: float | None
    label: str
    sampler: str = "hybrid"

    def run_name(self, alpha: float) -> str:
        """The sweep's name of a run: the strategy's name, with ``-a<alpha>`` when alpha is free."""
        return self.name if self.alpha is not None else f"{self.name}-a{alpha:.2f}"

    def describe(self, alpha: Any) -> str:
        """``X-Y``, or ``hybrid 0.5`` for a strategy whose alpha is free."""
        return self.label if self.alpha is not None else f"{self.label} {alpha}"


#: Training strategies by sampling name: hybrid (alpha free), X-X-mono (alpha 1), X-Y (alpha 0).
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("hybrid", None, "hybrid"),
    Strategy("x-x-mono", 1.0, "X-X-mono"),
    Strategy("x-y", 0.0, "X-Y"),
)}
#: Sampling names and their alpha (``hybrid`` takes ``alpha``).
SAMPLINGS = {name: s.alpha for name, s in STRATEGIES.items()}


def strategy_for_alpha(alpha: Any) -> Strategy:
    """The strategy a sweep trains at ``alpha``: the one whose fixed alpha it is (1 X-X-mono, 0 X-Y),
    else the one with a free alpha (hybrid)."""
    for s in STRATEGIES.values():
        if s.alpha is not None and s.alpha == alpha:
            return s
    return next(s for s in STRATEGIES.values() if s.alpha is None)


def parse_run_name(name: str) -> tuple[Strategy, float] | None:
    """``hybrid-a0.50`` -> (hybrid, 0.5), ``x-y`` -> (X-Y, 0.0): a sweep run's strategy and alpha
    (:meth:`Strategy.run_name` read back); ``None`` for any other name."""
    for s in STRATEGIES.values():
        if s.alpha is not None and name == s.name:
            return s, s.alpha
        if s.alpha is None and name.startswith(f"{s.name}-a"):
            try:
                return s, float(name.removeprefix(f"{s.name}-a"))
            except ValueError:
                return None
    return None
#: How alpha is realised: ``exact`` (round(alpha * steps) monolingual batches at seeded positions,
#: languages balanced) or ``random`` (each batch monolingual with probability alpha, the paper's rule).
BATCH_MIXES = ("exact", "random")
#: Which checkpoint becomes ``out/model``: the lowest validation loss, or the last step.
KEEP = ("best", "last")
#: Training arithmetic: ``auto`` is bf16 mixed precision where the hardware computes bf16 natively
#: (AMX or AVX512-bf16 CPUs, bf16 GPUs), fp32 elsewhere. Master weights and optimizer state stay fp32.
PRECISIONS = ("auto", "fp32", "bf16")
#: AdamW implementations (transformers ``optim`` names): the same update rule; the fused one runs it as
#: one kernel per parameter group. Measured (benchmarks/bench_training.py, Xeon/AMX, batch 32, bf16):
#: the optimizer phase falls from 1.23 s to 0.09 s of a 5.7 s step, so it is the default.
OPTIMIZERS = ("adamw_torch_fused", "adamw_torch")
#: Where a view's hard negatives (sentences of its answer's paragraph) come from: the paragraph in the
#: view's passage language (``passage``, the paper's and older runs' rule), in its query language
#: (``query``), in another language of the question (``other``), or each negative from a language of
#: the question drawn uniformly (``mix``); see :func:`pyterrier_hybrid.train_views.build_views`.
NEGATIVE_LANGUAGES = ("passage", "query", "other", "mix")
#: Marks an option that older runs recorded (no legacy value needed).
_RECORDED = object()


def option(default: Any, help: str = "", *, model_defining: bool = True, legacy: Any = _RECORDED,
           flag: Mapping[str, Any] | None = None, cli: bool = True, card: str | None = None) -> Any:
    """A TrainConfig field with its role in its metadata: ``help`` (the CLI's help text),
    ``model_defining`` (a finished run is reused only when all such options match; the others
    only change what is logged and which checkpoint is kept), ``legacy`` (what runs recorded before
    the option existed meant, so their configs still compare), ``flag`` (extra ``add_argument``
    keywords of its CLI flag: type, choices, action), ``cli`` (whether ``--<name>`` exists) and
    ``card`` (the model card's text when the value is not the default, ``{value}`` filled in;
    :func:`card_lines`)."""
    meta: dict[str, Any] = {"help": help, "model_defining": model_defining, "flag": dict(flag or {}), "cli": cli}
    if legacy is not _RECORDED:
        meta["legacy"] = legacy
    if card is not None:
        meta["card"] = card
    return field(default=default, metadata=meta)


def parse_language_weights(value: str | Mapping[str, Any] | None) -> dict[str, float] | None:
    """``"ar=2,hi=2"`` or ``{"ar": 2, "hi": 2}`` -> ``{"ar": 2.0, "hi": 2.0}`` (languages not named
    weigh 1; weights of 1 are dropped, so ``None`` and ``{}`` both mean uniform)."""
    if value is None:
        return None
    if isinstance(value, str):
        pairs = {}
        for part in (p.strip() for p in value.split(",") if p.strip()):
            lang, sep, weight = part.partition("=")
            if not sep or not lang.strip():
                raise ValueError(f"language_weights must look like 'ar=2,hi=1.5' (language=weight, comma-separated), "
                                 f"got {value!r}")
            try:
                pairs[lang.strip()] = float(weight)
            except ValueError as e:
                raise ValueError(f"language_weights: the weight of {lang.strip()!r} must be a number, got "
                                 f"{weight!r}") from e
        value = pairs
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"language_weights must map language codes to weights, got {value!r}")
    out = {}
    for lang, weight in sorted(value.items()):
        _finite(f"language_weights[{lang!r}]", weight, 0, open_low=True)
        if float(weight) != 1.0:
            out[lang] = float(weight)
    return out or None


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v:g}" for k, v in value.items())
    return str(value)


def card_lines(options: Mapping[str, Any]) -> list[str]:
    """The model card's texts of the options a run (its recorded ``options``) set away from their
    defaults, for the options whose field has a ``card`` text (options not recorded: their legacy value)."""
    lines = []
    for f in fields(TrainConfig):
        if "card" not in f.metadata:
            continue
        value = options.get(f.name, f.metadata.get("legacy", f.default))
        if value != f.default and value is not None:
            lines.append(f.metadata["card"].format(value=_show(value)))
    return lines


def resolve_alpha(sampling: str, alpha: float | None = 0.5) -> float:
    """The mono-batch probability of a sampling name (``x-x-mono`` 1, ``x-y`` 0, ``hybrid`` alpha)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown sampling {sampling!r}; valid: {', '.join(SAMPLINGS)}")
    value = SAMPLINGS[sampling] if SAMPLINGS[sampling] is not None else alpha
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"alpha must be in [0, 1] (1 = X-X-mono, 0 = X-Y), got {value}")
    return float(value)


def resolve_precision(precision: str = "auto") -> str:
    """``fp32`` or ``bf16``: ``auto`` follows the hardware (:func:`pyterrier_hybrid.cpu.native_bf16`
    on CPU); an explicit ``bf16`` without native bf16 runs, with a warning that it is slow."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return precision
    import torch

    from .cpu import native_bf16

    native = torch.cuda.is_bf16_supported() if torch.cuda.is_available() else native_bf16()
    if precision == "auto":
        return "bf16" if native else "fp32"
    if not native:
        warnings.warn("precision 'bf16' without native bf16 (no AMX, no AVX512-bf16): torch emulates it and trains "
                      "slower than fp32; use precision 'auto' or 'fp32'", stacklevel=3)
    return precision


def _positive_int(name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _finite(name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high < math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (see ``docs/training.md``).

    ``sampling``: ``x-x-mono`` (alpha 1), ``x-y`` (alpha 0) or ``hybrid`` (``alpha``, the
    probability of a monolingual batch, default 0.5; another alpha with x-x-mono / x-y is an error). ``steps``: optimizer steps (``None``: one epoch).
    ``batch_size``: questions per training batch (``mini_batch_size``: rows per forward pass of the cached loss).
    ``save_steps``: checkpoint and validation interval (``None``: ``steps``). ``eval_fraction`` of
    the examples (by question) is held out for the validation loss (0: none, the last step is
    kept). ``keep``: ``best`` (lowest validation loss) or ``last``. ``precision``: ``auto``,
    ``fp32`` or ``bf16``. ``prompts``: a preset name or dict (``None``: the model's own).
    ``languages``: the source's languages to train on (``None``: all). ``lora_rank``: train a LoRA
    adapter of this rank instead of all weights (:mod:`pyterrier_hybrid.lora`; ``None``: full fine-tuning).
    Objectives beyond the paper (defaults: the paper's): ``negative_language`` (where a view's hard
    negatives come from), ``num_positives`` (multi-positive InfoNCE), ``translation_weight`` (a
    translation-ranking loss added to the retrieval loss), ``language_weights`` (how often a language is drawn).
    """

    sampling: str = option("hybrid", "batch sampling", flag={"choices": list(SAMPLINGS)})
    alpha: float | None = option(None, "probability of a monolingual batch (hybrid)", flag={"type": float})
    steps: int | None = option(None, "optimizer steps (train: one epoch when unset)", flag={"type": int})
    batch_size: int = option(32, "questions per batch", flag={"type": int})
    lr: float = option(3e-5, "peak learning rate", flag={"type": float})
    weight_decay: float = option(0.01, "AdamW weight decay", legacy=0.01, flag={"type": float})
    warmup_ratio: float = option(0.1, "linear warm-up, fraction of the steps", legacy=0.1, flag={"type": float})
    temperature: float = option(0.05, "InfoNCE temperature", legacy=0.05, flag={"type": float})
    num_negatives: int = option(1, "hard negatives per row", legacy=1, flag={"type": int})
    max_query_length: int = option(64, "query tokens", legacy=64, flag={"type": int})
    max_passage_length: int = option(256, "passage tokens", legacy=256, flag={"type": int})
    prompts: str | Mapping[str, str] | None = option(
        None, "prompt preset (e5, paper, none); unset: the model's stored prompts")
    freeze_embeddings: bool = option(False, "freeze the word embeddings", flag={"action": "store_true"})
    cached_loss: bool = option(False, "CachedMultipleNegativesRankingLoss (large batches)", legacy=False,
                               flag={"action": "store_true"})
    mini_batch_size: int = option(32, "mini-batch of --cached-loss", legacy=32, flag={"type": int})
    batch_mix: str = option("exact", "exact: round(alpha x steps) mono batches, languages balanced; random: each "
                            "batch mono with probability alpha", legacy="random", flag={"choices": list(BATCH_MIXES)})
    save_steps: int | None = option(None, "checkpoint + validation interval (train: --steps; studies: a third of them)",
                                    model_defining=False, flag={"type": int})
    keep_checkpoints: bool = option(False, "keep out/checkpoints (optimizer state) when the run finishes, so it can "
                                    "be extended later (default: removed; out/model stays)", model_defining=False,
                                    legacy=True, flag={"action": "store_true"})
    eval_fraction: float = option(0.1, "held-out fraction of the questions for the validation loss",
                                  model_defining=False, flag={"type": float})
    keep: str = option("best", "checkpoint that becomes the model: lowest validation loss or last step",
                       legacy="best", flag={"choices": list(KEEP)})
    precision: str = option("auto", "training arithmetic; auto = bf16 where the CPU has it natively", legacy="fp32",
                            flag={"choices": list(PRECISIONS)})
    optimizer: str = option("adamw_torch_fused", "AdamW implementation (same update rule)", legacy="adamw_torch",
                            flag={"choices": list(OPTIMIZERS)})
    seed: int = option(0, "seed of the batch plan, split and initialisation", flag={"type": int})
    languages: tuple[str, ...] | None = option(None, "the source's languages to train on (None: all)", cli=False)
    max_examples: int | None = option(None, "first N examples of the source", flag={"type": int})
    negative_language: str = option(
        "passage", "language of each view's hard negatives (sentences of its answer's paragraph): passage (the "
        "view's passage language), query (its query language), other (another language of the question), mix "
        "(each negative from a language of the question drawn uniformly)", legacy="passage",
        flag={"choices": list(NEGATIVE_LANGUAGES)}, card="hard negatives from the answer's paragraph "
                                                          "(negative_language {value})")
    num_positives: int = option(
        1, "positives per anchor: its answer sentence in up to N languages of the question (multi-positive "
        "InfoNCE; 1 = InfoNCE)", legacy=1, flag={"type": int},
        card="multi-positive InfoNCE (the answer in up to {value} languages)")
    translation_weight: float = option(
        0.0, "weight of the translation-ranking loss (answer sentence vs its translations in the batch) added to "
        "the retrieval loss (0: off)", legacy=0.0, flag={"type": float}, card="translation-ranking loss weight {value}")
    language_weights: Mapping[str, float] | None = option(
        None, "how often a language is drawn for monolingual batches and as a side of cross-lingual pairs, e.g. "
        "ar=2,hi=2 (languages not named: 1; unset: uniform)", legacy=None, flag={"type": parse_language_weights},
        card="language weights {value}")
    lora_rank: int | None = option(None, "train a LoRA adapter of this rank (all encoder linear layers, alpha 2r) "
                                   "instead of all weights; out/adapter holds it, out/model the merged weights "
                                   "(needs peft)", legacy=None, flag={"type": int})

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once, here
        fixed = resolve_alpha(self.sampling, 0.5) if self.sampling != "hybrid" else None  # checks the name
        if self.alpha is not None:
            resolve_alpha("hybrid", self.alpha)  # checks the range
            if fixed is not None and self.alpha != fixed:
                raise ValueError(f"sampling {self.sampling} fixes alpha at {fixed}, got alpha {self.alpha}: alpha "
                                 f"is the monolingual-batch probability of sampling 'hybrid'")
        set_(self, "alpha", fixed if fixed is not None else DEFAULT_ALPHA if self.alpha is None else float(self.alpha))
        for name in ("batch_size", "max_query_length", "max_passage_length", "mini_batch_size", "num_positives"):
            _positive_int(name, getattr(self, name))
        for name in ("steps", "save_steps", "max_examples", "lora_rank"):
            _positive_int(name, getattr(self, name), optional=True)
        if not isinstance(self.keep_checkpoints, bool):
            raise ValueError(f"keep_checkpoints must be True or False, got {self.keep_checkpoints!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.num_negatives, bool) or not isinstance(self.num_negatives, int) or self.num_negatives < 0:
            raise ValueError(f"num_negatives must be a non-negative integer, got {self.num_negatives!r}")
        if self.batch_size == 1 and self.num_negatives == 0:
            raise ValueError("batch_size 1 with num_negatives 0 leaves InfoNCE no negative (the loss is constantly 0): "
                             "use batch_size >= 2 or num_negatives >= 1")
        _finite("lr", self.lr, 0, open_low=True)
        _finite("temperature", self.temperature, 0, open_low=True)
        _finite("weight_decay", self.weight_decay, 0)
        _finite("warmup_ratio", self.warmup_ratio, 0)
        _finite("eval_fraction", self.eval_fraction, 0)
        if not self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction!r}")
        _finite("translation_weight", self.translation_weight, 0)
        set_(self, "language_weights", parse_language_weights(self.language_weights))
        if self.cached_loss and (self.num_positives > 1 or self.translation_weight > 0):
            raise ValueError("cached_loss (GradCache) computes plain InfoNCE only: use it with num_positives 1 and "
                             "translation_weight 0, or drop cached_loss")
        for name, valid in (("batch_mix", BATCH_MIXES), ("keep", KEEP), ("precision", PRECISIONS), ("optimizer", OPTIMIZERS),
                            ("negative_language", NEGATIVE_LANGUAGES)):
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        if self.prompts is not None and not isinstance(self.prompts, str):
            from .models import resolve_prompts

            set_(self, "prompts", dict(resolve_prompts(dict(self.prompts))))
        if self.languages is not None:
            if isinstance(self.languages, str) or not all(isinstance(x, str) for x in self.languages):
                raise ValueError(f"languages must be a list of language codes, got {self.languages!r}")
            set_(self, "languages", tuple(self.languages))
            if not self.languages:
                raise ValueError("languages is empty: give at least one language, or None for all of the source")

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def make(cls, base: TrainConfig | None = None, **options: Any) -> TrainConfig:
        """``base`` (default: the defaults) with ``options`` replaced; unknown names are an error."""
        unknown = sorted(set(options) - set(cls.options()))
        if unknown:
            raise TypeError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(cls.options())}")
        return dataclasses.replace(base, **options) if base is not None else cls(**options)

    def resolved(self) -> TrainConfig:
        """This config with ``precision`` resolved for this machine (``fp32`` or ``bf16``)."""
        return dataclasses.replace(self, precision=resolve_precision(self.precision))

    def to_json(self) -> dict[str, Any]:
        """The options as JSON values (``languages`` a list)."""
        out = dataclasses.asdict(self)
        out["languages"] = list(self.languages) if self.languages is not None else None
        out["language_weights"] = dict(self.language_weights) if self.language_weights is not None else None
        return out

    @classmethod
    def from_json(cls, options: Mapping[str, Any]) -> TrainConfig:
        """A recorded ``options`` mapping (unknown keys ignored; options older runs did not record
        take the value those runs used)."""
        known = set(cls.options())
        return cls(**{**_LEGACY, **{k: v for k, v in options.items() if k in known}})

    def differences(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """The model-defining options whose values differ: ``{name: (self's, other's)}``."""
        a, b = self.to_json(), other.to_json()
        return {k: (a[k], b[k]) for k in _MODEL_DEFINING if a[k] != b[k]}

    def matches(self, other: TrainConfig) -> bool:
        """Whether a model trained with ``other`` is the model this config would train."""
        return not self.differences(other)


#: Options that decide the trained weights (their fields' ``model_defining``): a finished run is
#: reused only when all of them match.
_MODEL_DEFINING = tuple(f.name for f in fields(TrainConfig) if f.metadata["model_defining"])
#: What runs recorded before an option existed meant (their fields' ``legacy``).
_LEGACY = {f.name: f.metadata["legacy"] for f in fields(TrainConfig) if "legacy" in f.metadata}


def describe_differences(diff: Mapping[str, tuple[Any, Any]]) -> str:
    """``"steps 60 vs 240, lr 3e-05 vs 5e-05"`` for an error message."""
    return ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in diff.items())
