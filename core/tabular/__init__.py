"""Tabular risk models, for any table: one module per step of the data's journey.

``schema`` (fields, classes, subgroups; stored in and read back from meta.json) -> ``columns`` (type
inference for a new table) -> ``training`` (refuse bad tables, select a family by CV, register) ->
``model`` (the estimator; load/save) -> ``explain`` (exact SHAP in log-odds) -> ``predictor`` (a
registered version loaded from its folder) -> ``batch`` (CSV in, CSV out). Front ends use
``core.services.tabular``.
"""
