"""What an image training run is asked for (``TrainConfig``, checked as it is built) and what it gives back."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from typing import Any

from core.errors import InvalidOptionError
from core.i18n import _
from core.imaging import fitting, pretraining
from core.imaging import network as network_mod
from core.models.thresholds import CENTRED_YOUDEN


@dataclass
class TrainConfig:
    epochs: int = 12
    image_size: int = 192
    batch_size: int = 32
    validation_fraction: float = 0.2
    learning_rate: float = 2e-3
    patience: int = 7
    seed: int = 1234
    positive_class: str | None = None
    init_from: str | None = None
    max_images_per_class: int | None = None
    # What docs/robust_model.md's ablation kept: strong augmentation, three cosine cycles (the last
    # snapshot registered), a centred threshold. Snapshot ensembles, mixup, test-time augmentation and
    # temperature scaling measured worse or no better on held-out patients; each stays switchable.
    augmentation: str = "strong"
    mixup: float = 0.0
    snapshots: int = 3
    ensemble: int = 1
    """How many of the last snapshots the registered model averages (1 with plateau training)."""
    members: int = 1
    """Independently trained networks averaged into the registered model (a deep ensemble,
    Lakshminarayanan et al. 2017): each its own seed, every second one wider (``fit_settings``)."""
    wide_members: bool = True
    """Whether every second member uses the wider network; False keeps one width, so pretraining
    learns one trunk instead of two (it costs as much per width as the fit itself)."""
    wide: bool = False
    """Every member uses the wider network (with one member: a single wide network), so a larger
    input can be measured with the wider trunk alone."""
    temperature_scaling: bool = False
    threshold_rule: str = CENTRED_YOUDEN
    pretrain_epochs: int = 0
    """Epochs of self-supervised contrastive pretraining on the training patients' films before the
    supervised fit (``core.imaging.pretraining``); 0 = none."""

    def __post_init__(self) -> None:
        check_members(self.members)
        pretraining.check_epochs(self.pretrain_epochs)
        if self.pretrain_epochs and self.init_from:
            raise InvalidOptionError(
                _(
                    "Start either from a registered model ({model}) or from self-supervised pretraining, not both: "
                    "pretraining learns the network's first weights from the films themselves."
                ).format(model=self.init_from)
            )
        if self.wide and self.init_from:
            raise InvalidOptionError(
                _(
                    "The wider network cannot start from {model}: a registered model's weights fit only the "
                    "standard width. Train the wider network from scratch or from self-supervised pretraining."
                ).format(model=self.init_from)
            )

    def trunks(self) -> list[tuple[int, ...]]:
        """The distinct network widths the members use (each pretrained once when pretraining is on)."""
        return list(dict.fromkeys(self.fit_settings(m).widths for m in range(self.members)))

    def fit_settings(self, member: int = 0) -> fitting.FitSettings:
        """Member ``member``'s settings: the first is this config; later ones another seed, and every
        second one the wider network (unless warm-started, which needs the bundled layout), or every
        one with ``wide``."""
        wide = self.wide or (member % 2 and self.wide_members and not self.init_from)
        widths = network_mod.WIDE_WIDTHS if wide else network_mod.WIDTHS
        return fitting.FitSettings(
            self.epochs,
            self.batch_size,
            self.learning_rate,
            self.patience,
            self.seed + 1000 * member,
            self.init_from,
            self.augmentation,
            self.mixup,
            self.snapshots,
            widths,
        )


def check_members(members: object) -> int:
    """``members`` if it is a usable deep-ensemble size (a whole number, 1 or more).

    Raises:
        InvalidOptionError: anything else (0 or fewer would train nothing and register nothing usable).
    """
    if isinstance(members, bool) or not isinstance(members, numbers.Integral) or members < 1:
        raise InvalidOptionError(
            _(
                "The number of ensemble members must be a whole number, 1 or more (1 trains a single network); "
                "got {members}."
            ).format(members=members)
        )
    return int(members)


@dataclass
class TrainResult:
    model: str
    device: str
    seconds: float
    epochs: int
    dataset: dict[str, Any]
    validation: dict[str, Any]
    recipe: dict[str, Any] | None = None
    """The recipe chosen from the data and why (``recipes.Recipe.as_dict``); None when given whole."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
