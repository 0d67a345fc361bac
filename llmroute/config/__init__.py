"""Config: typed model (`model`), YAML loading and validation (`load`), starter text (`starter`)."""
