"""Choose a training recipe from the data it will train on, and say why.

The default TrainConfig was tuned on 5,000 chest films (docs/robust_model.md): strong augmentation and
three cosine cycles. On a 253-image brain MRI folder it reached validation AUC 0.79 where plateau decay
with early stopping and standard augmentation reached 0.93. A researcher should not have to know that:

1. ``describe``  folder -> DataFacts (sizes, class balance, colour, DICOM Modality, chest-likeness)
2. ``choose``    DataFacts + the fields the researcher set -> Recipe (TrainConfig fields + reasons)

Every rule that fires leaves a ``Reason`` (a code and the facts it read); ``reason_text``
(core.models.recipe_text, so cards can say it too) turns it into a sentence in the reader's language,
so meta.json stays language-neutral.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidOptionError
from core.i18n import _
from core.imaging import datasets
from core.models.recipe_text import reason_text, summary_text  # noqa: F401  (the words for a recipe live with the card)

SCHEDULES = ("auto", "plateau", "snapshots")
PRESETS: dict[str, dict[str, Any]] = {
    # The earlier default: what reached 0.93 on the 253-image brain MRI folder.
    "plateau": {"augmentation": "standard", "snapshots": 0, "ensemble": 1, "epochs": 30, "patience": 7},
    # The ablation's chest recipe (docs/robust_model.md): TrainConfig's defaults.
    "snapshots": {"augmentation": "strong", "snapshots": 3, "ensemble": 1, "epochs": 12, "patience": 7},
}
LARGE_CLASS = 1000
"""Images in the smallest class from which the snapshot recipe applies: the ablation measured it with
1,341 films in its smallest class; nothing smaller was shown to gain from it."""
CHEST_LIKE = 0.8
"""Share of sampled images the bundled chest model's OOD detector must accept to call a folder chest films."""
CHEST_MODALITIES = frozenset({"CR", "DX"})
IMAGE_SIZES = (32, 64, 96, 128, 160, 192)
MAX_AUTO_SIZE = 192
CHEST_SAMPLE = 32
COLOUR_TOLERANCE = 4.0
"""Mean distance of a pixel's channels from their mean (0-255) above which an image counts as colour (JPEG noise stays below)."""
TRANSFER_MODEL = "chest_xray"
RECIPE_FIELDS = ("augmentation", "snapshots", "ensemble", "epochs", "patience", "image_size", "init_from")


@dataclass(frozen=True)
class DataFacts:
    """What a labeled folder looks like, read from file headers and a small sample of decoded images."""

    class_counts: dict[str, int]
    median_short_side: int
    colour_fraction: float
    modalities: dict[str, int] = field(default_factory=dict)
    """DICOM Modality -> files (DICOM files only)."""
    chest_like: float | None = None
    """Share of a sample the bundled chest model accepts as chest films; None when not checked."""
    chest_sample: int = 0

    @property
    def n_images(self) -> int:
        return int(sum(self.class_counts.values()))

    @property
    def smallest_class(self) -> int:
        return int(min(self.class_counts.values())) if self.class_counts else 0

    @property
    def minority_fraction(self) -> float:
        return self.smallest_class / self.n_images if self.n_images else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "n_images": self.n_images,
            "smallest_class": self.smallest_class,
            "minority_fraction": round(self.minority_fraction, 3),
        }


@dataclass(frozen=True)
class Reason:
    code: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    """The TrainConfig fields chosen (``settings``), those the researcher set (``explicit``), and why."""

    schedule: str
    settings: dict[str, Any]
    explicit: dict[str, Any]
    reasons: list[Reason]
    facts: DataFacts

    def config_fields(self) -> dict[str, Any]:
        """The TrainConfig keyword arguments: the chosen fields, the researcher's on top ("" = from scratch)."""
        fields = self.settings | self.explicit
        return fields | {"init_from": fields.get("init_from") or None}

    def as_dict(self) -> dict[str, Any]:
        """meta.json's ``recipe``: language-neutral, nothing identifying (counts and sizes only)."""
        return {
            "schedule": self.schedule,
            "settings": self.config_fields(),
            "chosen": self.settings,
            "explicit": sorted(self.explicit),
            "reasons": [asdict(r) for r in self.reasons],
            "facts": self.facts.as_dict(),
        }


def _header_facts(path: Path) -> tuple[int | None, bool, str | None]:
    """(short side, colour?, DICOM Modality) from a file's header, without decoding pixels."""
    from PIL import Image

    try:
        with open(path, "rb") as fh:
            is_dicom = fh.read(132)[128:132] == b"DICM" or path.suffix.lower() in (".dcm", ".dicom")
        if not is_dicom:
            with Image.open(path) as im:
                return min(im.size), _is_colour(im), None
    except Exception:  # not a raster PIL reads: try DICOM; unreadable files are the report's business
        pass
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        colour = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).startswith(("RGB", "YBR", "PALETTE"))
        return (min(rows, cols) or None), colour, (str(ds.get("Modality", "")).strip().upper() or None)
    except Exception:
        return None, False, None


def _is_colour(im) -> bool:
    """Colour content, not colour storage: many greyscale films are saved as RGB JPEGs."""
    if im.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return False
    im.draft("RGB", (64, 64))  # JPEGs decode at a fraction of their size
    small = np.asarray(im.convert("RGB").resize((64, 64)), dtype=np.float32)
    return float(np.abs(small - small.mean(axis=2, keepdims=True)).mean()) > COLOUR_TOLERANCE


def describe(folder: Path, check_chest: bool = True, seed: int = 1234) -> DataFacts:
    """Read what the rule needs from a labeled folder: class counts, image size, colour, Modality, chest-likeness.

    Headers only, except ``CHEST_SAMPLE`` decoded images shown to the bundled chest model's OOD detector
    (``check_chest``; skipped when no chest model is installed).
    """
    dataset = datasets.scan_labeled_folder(Path(folder), None, seed)
    counts: Counter[str] = Counter()
    sides: list[int] = []
    colour = 0
    modalities: Counter[str] = Counter()
    readable: list[Path] = []
    for path, label in zip(dataset.files, dataset.labels):
        side, is_colour, modality = _header_facts(path)
        if side is None:
            continue
        counts[dataset.classes[int(label)]] += 1
        sides.append(side)
        colour += int(is_colour)
        readable.append(path)
        if modality:
            modalities[modality] += 1
    chest_like, sampled = chest_likeness(readable, seed) if check_chest else (None, 0)
    return DataFacts(
        {c: int(counts.get(c, 0)) for c in dataset.classes},
        int(np.median(sides)) if sides else 0,
        round(colour / max(len(sides), 1), 3),
        dict(modalities),
        chest_like,
        sampled,
    )


def chest_likeness(files: list[Path], seed: int = 1234, sample: int = CHEST_SAMPLE) -> tuple[float | None, int]:
    """(share of a random sample the bundled chest model's OOD detector accepts, sample size); (None, 0) without one."""
    from core.errors import LucidDxError
    from core.imaging.door import load_image

    try:
        from core.imaging.classifier import load_classifier

        model = load_classifier(TRANSFER_MODEL)
    except LucidDxError:
        return None, 0
    if model.ood_detector is None or not files:
        return None, 0
    picked = random.Random(seed).sample(files, min(sample, len(files)))
    pixels = []
    for path in picked:
        try:
            pixels.append(load_image(path).pixels)
        except LucidDxError:
            continue
    if not pixels:
        return None, 0
    feats = np.concatenate([f for _p, f in model.predict_pixels(pixels)])
    accepted = model.ood_detector.score(feats) <= model.ood_detector.threshold_
    return round(float(accepted.mean()), 3), len(pixels)


def looks_like_chest(facts: DataFacts) -> bool:
    """Chest films by appearance (the chest model accepts them), greyscale, and no other DICOM Modality."""
    other = set(facts.modalities) - CHEST_MODALITIES
    return facts.chest_like is not None and facts.chest_like >= CHEST_LIKE and facts.colour_fraction < 0.5 and not other


def choose_schedule(facts: DataFacts) -> tuple[str, Reason]:
    """The snapshot recipe only where it was measured to help: many chest films per class; plateau otherwise."""
    if facts.smallest_class >= LARGE_CLASS and looks_like_chest(facts):
        return "snapshots", Reason("large-chest", {"smallest_class": facts.smallest_class, "large": LARGE_CLASS})
    if facts.smallest_class >= LARGE_CLASS:
        return "plateau", Reason("large-not-chest", {"smallest_class": facts.smallest_class})
    return "plateau", Reason(
        "small", {"smallest_class": facts.smallest_class, "large": LARGE_CLASS, "n_images": facts.n_images}
    )


def choose_size(facts: DataFacts) -> tuple[int, Reason]:
    """The largest standard size up to 192 px that the images' median short side fills without upscaling."""
    fitting = [s for s in IMAGE_SIZES if s <= min(facts.median_short_side, MAX_AUTO_SIZE)]
    size = fitting[-1] if fitting else IMAGE_SIZES[0]
    return size, Reason("size", {"median_short_side": facts.median_short_side, "size": size})


def choose_start(facts: DataFacts, transfer_available: bool) -> tuple[str | None, Reason]:
    """Fine-tune the bundled chest model only on chest films; from scratch on anything else."""
    if not transfer_available or facts.chest_like is None:
        return None, Reason("scratch-no-model")
    if set(facts.modalities) - CHEST_MODALITIES:
        return None, Reason("scratch-modality", {"modalities": ", ".join(sorted(facts.modalities))})
    if facts.colour_fraction >= 0.5:
        return None, Reason("scratch-colour", {"percent": round(100 * facts.colour_fraction)})
    if not looks_like_chest(facts):
        return None, Reason(
            "scratch-not-chest", {"percent": round(100 * facts.chest_like), "sample": facts.chest_sample}
        )
    return TRANSFER_MODEL, Reason(
        "fine-tune", {"percent": round(100 * facts.chest_like), "sample": facts.chest_sample, "model": TRANSFER_MODEL}
    )


def schedule_reason(chosen: Reason, schedule: str, explicit: dict[str, Any]) -> Reason:
    """Why training runs as it does: the data's reason (or the preset picked), or the researcher's settings where
    they change what that reason argues for.

    A schedule reason argues for an augmentation and for cosine cycles or plateau decay ("on small sets,
    standard augmentation with early stopping beat the chest-tuned recipe"): a run with strong augmentation
    or cycles set by hand must not be explained by it. Epochs, patience, a cycle count or ``ensemble`` keep
    the kind the reason argues for; the ``explicit`` reason names them.
    """
    preset = PRESETS[schedule]
    changed: dict[str, Any] = {}
    if explicit.get("augmentation", preset["augmentation"]) != preset["augmentation"]:
        changed["augmentation"] = explicit["augmentation"]
    if bool(explicit.get("snapshots", preset["snapshots"])) != bool(preset["snapshots"]):
        changed["snapshots"] = int(explicit["snapshots"])
    if not changed:
        return chosen
    return Reason("schedule-set", {"schedule": schedule, "settings": changed, "instead_of": asdict(chosen)})


def size_reason(chosen: Reason, explicit: dict[str, Any]) -> Reason:
    """Why films are trained at their size: the data's reason, or the researcher's size where it differs (the
    data's "{size} px needs no upscaling" would then be false: a 64 px job said it of 192 px)."""
    asked = explicit.get("image_size")
    if asked is None or int(asked) == chosen.values.get("size"):
        return chosen
    return Reason("size-picked", {"size": int(asked), "median_short_side": chosen.values.get("median_short_side")})


def start_reason(chosen: Reason, init_from: str | None, explicit: dict[str, Any]) -> Reason:
    """Why training starts where it does: the data's reason, or the researcher's choice where it overrides it.

    An explicit ``init_from`` ("" = from scratch) that differs from the data's choice makes that reason
    false ("so training starts from its weights" when it starts from scratch): the researcher's choice
    is said instead. Asked-for self-supervised pretraining (``pretrain_epochs``) is the start, unless a
    model was named too (which TrainConfig refuses); without it, the wider network (``wide``) starts
    from scratch, no bundled model having its layout.
    """
    if explicit.get("pretrain_epochs") and not explicit.get("init_from"):
        return Reason("pretrain", {"epochs": int(explicit["pretrain_epochs"])})
    if explicit.get("wide") and "init_from" not in explicit and init_from:
        return Reason("wide")
    if "init_from" not in explicit or (explicit["init_from"] or None) == init_from:
        return chosen
    if not explicit["init_from"]:
        return Reason("scratch-picked")
    return Reason("start-picked", {"model": explicit["init_from"]})


def choose(
    facts: DataFacts, explicit: dict[str, Any] | None = None, schedule: str = "auto", transfer_available: bool = True
) -> Recipe:
    """The recipe for ``facts``; the researcher's ``explicit`` TrainConfig fields always win.

    ``schedule``: "auto", or a preset the researcher picked ("plateau", "snapshots").
    """
    explicit = {k: v for k, v in (explicit or {}).items() if v is not None}
    if schedule not in SCHEDULES:
        raise InvalidOptionError(
            _('The training schedule "{schedule}" is not one of {choices}.').format(
                schedule=schedule, choices=", ".join(SCHEDULES)
            )
        )
    cap = explicit.get("max_images_per_class")
    if cap:  # the images that will train, not the folder's
        facts = replace(facts, class_counts={c: min(n, int(cap)) for c, n in facts.class_counts.items()})
    reasons: list[Reason] = []
    if schedule == "auto":
        schedule, why = choose_schedule(facts)
    else:
        why = Reason("schedule-picked", {"schedule": schedule})
    reasons.append(schedule_reason(why, schedule, explicit))
    settings = dict(PRESETS[schedule])
    settings["image_size"], why = choose_size(facts)
    reasons.append(size_reason(why, explicit))
    settings["init_from"], why = choose_start(facts, transfer_available)
    reasons.append(start_reason(why, settings["init_from"], explicit))
    if explicit.get("pretrain_epochs") or explicit.get("wide"):  # no bundled model fits these trunks
        settings["init_from"] = None
    overridden = sorted(k for k in explicit if k in RECIPE_FIELDS)
    if overridden:
        reasons.append(Reason("explicit", {"fields": ", ".join(overridden)}))
    return Recipe(schedule, settings, explicit, reasons, facts)
