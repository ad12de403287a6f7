"""Research pipelines: papermill notebooks that sweep, validate and promote configurations."""
