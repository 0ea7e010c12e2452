"""A training recipe (core.imaging.recipes, stored in meta.json as ``recipe``) in the reader's language."""

from __future__ import annotations

from typing import Any

from core.i18n import _


def reason_text(reason: Any) -> str:
    """One reason as a sentence in the reader's language."""
    r = reason if isinstance(reason, dict) else {"code": reason.code, "values": reason.values}
    values = dict(r.get("values") or {})
    if r.get("code") == "schedule-set":
        return _schedule_set_text(values)
    texts = {
        "large-chest": _("the smallest class has {smallest_class} images (at least {large}) and the images look like "
                         "chest films, the data the strong-augmentation, cosine-cycle recipe was tuned on"),
        "large-not-chest": _("the smallest class has {smallest_class} images but they do not look like chest films, so "
                             "the chest-tuned strong augmentation is not used"),
        "small": _("the smallest class has {smallest_class} images (fewer than {large}): on small sets, standard "
                   "augmentation with early stopping beat the chest-tuned recipe"),
        "schedule-picked": _("the researcher picked the {schedule} schedule"),
        "size": _("the images' median short side is {median_short_side} px, so {size} px needs no upscaling "
                  "(at most 192 px)"),
        "size-picked": _("the researcher chose {size} px (the images' median short side is {median_short_side} px)"),
        "scratch-no-model": _("no bundled chest model is installed to start from"),
        "scratch-modality": _("the DICOM modality ({modalities}) is not a chest radiograph, so training starts from scratch"),
        "scratch-colour": _("{percent}% of the images are in colour, unlike chest films, so training starts from scratch"),
        "scratch-not-chest": _("the bundled chest model recognised only {percent}% of {sample} sampled images as chest "
                               "films, so training starts from scratch"),
        "fine-tune": _("the bundled chest model recognised {percent}% of {sample} sampled images as chest films, so "
                       "training starts from its weights ({model})"),
        "scratch-picked": _("the researcher chose to train from scratch"),
        "start-picked": _("the researcher chose to start from the weights of {model}"),
        "pretrain": _("the researcher asked for {epochs} epochs of self-supervised pretraining on the training "
                      "films themselves, so the network starts from what it learned there"),
        "wide": _("the researcher asked for the wider network, whose layout no bundled model has, so training "
                  "starts from scratch"),
        "explicit": _("the researcher set {fields} explicitly"),
    }
    text = texts.get(r.get("code", ""))
    return text.format(**values) if text else str(r.get("code", ""))


def _schedule_set_text(values: dict[str, Any]) -> str:
    """The researcher's augmentation or schedule kind, said in place of the reason it overrode."""
    settings = values.get("settings") or {}
    parts = []
    if "augmentation" in settings:
        parts.append(_("{augmentation} augmentation").format(augmentation=_augmentation(settings["augmentation"])))
    if "snapshots" in settings:
        parts.append(_("{cycles} cosine cycles").format(cycles=settings["snapshots"]) if settings["snapshots"]
                     else _("plateau decay with early stopping"))
    chosen = parts[0] if len(parts) == 1 else _("{first} and {second}").format(first=parts[0], second=parts[1])
    instead = values.get("instead_of") or {}
    if instead.get("code") == "schedule-picked":
        return _("the researcher picked the {schedule} schedule, with {settings}").format(
            schedule=values.get("schedule"), settings=chosen)
    return _("the researcher chose {settings} instead of the {schedule} schedule the data suggested ({reason})").format(
        settings=chosen, schedule=values.get("schedule"), reason=reason_text(instead))


def _augmentation(level: Any) -> str:
    return {"standard": _("standard"), "strong": _("strong")}.get(level, str(level))


def summary_text(recipe: dict[str, Any]) -> str:
    """What will be trained, in one line: schedule, augmentation, epochs, size, starting weights."""
    s = recipe.get("settings", {})
    schedule = (_("{cycles} cosine cycles").format(cycles=s.get("snapshots")) if s.get("snapshots")
                else _("plateau decay with early stopping (patience {patience})").format(patience=s.get("patience")))
    start = _("from scratch")
    if s.get("init_from"):
        start = _("starting from {model}").format(model=s["init_from"])
    elif s.get("pretrain_epochs"):
        start = _("starting from {epochs} self-supervised epochs on the training films").format(epochs=s["pretrain_epochs"])
    return _("{augmentation} augmentation, {schedule}, up to {epochs} epochs at {size} px, {start}").format(
        augmentation=_augmentation(s.get("augmentation")), schedule=schedule, epochs=s.get("epochs"), size=s.get("image_size"),
        start=start)


def explanation(recipe: dict[str, Any]) -> str:
    """"<what>, because <reason>; <reason>; ..." for a card, the Retrain page or the CLI."""
    return _("{summary}, because {reasons}.").format(
        summary=summary_text(recipe), reasons="; ".join(reason_text(r) for r in recipe.get("reasons", [])))
