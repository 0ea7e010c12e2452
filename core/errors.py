"""One exception hierarchy for LucidDx.

Every error a user can cause is a ``LucidDxError`` whose message says what was wrong, with which
file or row, and what to do about it. The CLI and the pages catch the base class and show the message.
"""

from __future__ import annotations


class LucidDxError(Exception):
    """Base class of every error LucidDx raises on purpose."""


class UnsupportedImageError(LucidDxError):
    """An upload that is not a readable, safe image (empty, truncated, bomb, wrong format...)."""


class InvalidDatasetError(LucidDxError):
    """A training/evaluation folder or archive that cannot be used (one class, no images, zip-slip...)."""


class InvalidPatientDataError(LucidDxError):
    """Patient fields that are missing, non-numeric or physiologically impossible."""


class ModelNotFoundError(LucidDxError):
    """A model name or version that is not registered."""


class RegistryError(LucidDxError):
    """A registry operation that is not allowed (deleting a bundled model, activating a missing version)."""


class JobCancelledError(LucidDxError):
    """A background job (training, measuring explanations) stopped by the user."""


class TrainingCancelledError(JobCancelledError):
    """A training run stopped by the user; nothing was registered."""


class InvalidModelError(LucidDxError):
    """A registered model whose files or metadata are missing, damaged or inconsistent."""


class InvalidExplanationError(LucidDxError):
    """An explanation asked for with a method or class the model does not offer."""


class InvalidOptionError(LucidDxError):
    """A command option outside what the command accepts (an unknown model family, too few folds...)."""


class PermissionDeniedError(LucidDxError):
    """An action the signed-in account's role does not allow (or an account that is disabled)."""


class ModelNotApprovedError(PermissionDeniedError):
    """A model version no administrator has activated, asked for where only approved versions may be used
    (a clinician, a clinician's API key, the DICOM node), or a name none of whose versions is approved yet."""


class AuthenticationError(LucidDxError):
    """A sign-in or API key that does not match an enabled account (the message never says which part)."""


class AccountLockedError(AuthenticationError):
    """An account locked for a while after too many failed sign-ins."""


class AccountError(LucidDxError):
    """An account operation that cannot be done (name taken, unknown account, weak password, bad role...)."""


class AccessStoreError(LucidDxError):
    """The account and audit database cannot be reached, created or upgraded."""


class DicomResultError(LucidDxError):
    """A DICOM result object (Secondary Capture, SR) that could not be built or failed its read-back check."""


class DicomNodeError(LucidDxError):
    """The DICOM node cannot start (address in use, bad AE title or port) or send its results on."""


class UploadTooLargeError(UnsupportedImageError):
    """An upload larger than the image door's limit (the REST API answers 413)."""


class ReportError(LucidDxError):
    """A case report that cannot be made (no film could be read, an unknown language...)."""


class EvalSetError(LucidDxError):
    """A locked evaluation set is missing, unusable, or its files changed since it was locked."""


class GateFailedError(LucidDxError):
    """A version was refused activation: worse than the active one on the locked evaluation set."""

    def __init__(self, message: str, gate: dict | None = None) -> None:
        super().__init__(message)
        self.gate = gate


class AuditKeyError(AccessStoreError):
    """The audit key (outside the database) is missing, unreadable, too short, or readable by others."""


class AuditCheckpointError(LucidDxError):
    """An audit checkpoint file that is unreadable, not a checkpoint, or not signed with this installation's key."""
