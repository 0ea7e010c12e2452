"""The REST API (FastAPI) over ``core.services``: routes translate HTTP into service calls and back.

app        create_app(): routers, error handlers, /docs without a CDN, /v1/health
auth       Bearer API key -> account, role per route, an audit record per call
imaging    POST /v1/predict, /v1/explain, /v1/report
risk       POST /v1/risk (one JSON patient or a CSV)
catalog    GET /v1/models, /v1/models/{name}/card
errors     LucidDxError -> 400/401/403/404/413/422 with {"detail": message}
uploads    the upload size limit (the image door's)
docs       the self-contained /docs page
"""

from core.api.app import create_app

__all__ = ["create_app"]
