"""Where model directories come from: a local path, an S3-compatible store or an MLflow
Model Registry. Each source is one module; `uri` parses spec.model.uri, `manifest`
checks what was fetched, `fetch` and `resolve` are the commands the pods run."""
