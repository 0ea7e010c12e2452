"""The explanation methods LucidDx offers, by key and display name (no TensorFlow needed to list them)."""

from __future__ import annotations

METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Faster Score-CAM",
    "smoothgrad": "SmoothGrad",
    "lime": "LIME",
    "shap": "SHAP (Partition)",
}
